"""Every text a person sees exists in Vietnamese (the source) and in English (the catalog)."""

from __future__ import annotations

import io
from pathlib import Path

from babel.messages.extract import extract_from_dir
from babel.messages.mofile import write_mo
from babel.messages.pofile import read_po

ROOT = Path(__file__).resolve().parents[2]
PO = ROOT / "idp" / "translations" / "en" / "LC_MESSAGES" / "messages.po"
MO = PO.with_suffix(".mo")
METHODS = [("**.py", "python"), ("templates/**.html", "jinja2")]
KEYWORDS = {"_": None, "gettext": None, "ngettext": (1, 2), "lazy_gettext": None, "_l": None}


def load_po():  # type: ignore[no-untyped-def]
    with PO.open("rb") as fh:
        return read_po(fh)


def source_messages() -> set[str]:
    found = set()
    for _, _, message, _, _ in extract_from_dir(str(ROOT / "idp"), METHODS, keywords=KEYWORDS):
        found.add(message[0] if isinstance(message, tuple) else message)
    return found


def test_every_page_text_has_an_english_translation() -> None:
    catalog = load_po()
    translated = {
        (m.id[0] if isinstance(m.id, tuple) else m.id)
        for m in catalog
        if m.id and (all(m.string) if isinstance(m.string, tuple) else m.string) and not m.fuzzy
    }
    missing = sorted(source_messages() - translated)
    assert not missing, "run `make messages` and translate: " + "; ".join(missing[:5])


def test_compiled_catalog_matches_the_po_file() -> None:
    buffer = io.BytesIO()
    write_mo(buffer, load_po())
    assert MO.read_bytes() == buffer.getvalue(), "run `make messages` to recompile the English catalog"


def test_pages_are_vietnamese_by_default_and_english_on_request(client) -> None:
    page = client.get("/no-such-page")
    html = page.get_data(as_text=True)
    assert page.status_code == 404
    assert '<html lang="vi">' in html and "Không tìm thấy trang" in html
    english = client.get("/no-such-page?lang=en").get_data(as_text=True)
    assert '<html lang="en">' in english and "Page not found" in english
    # The choice is remembered for the next page.
    assert "Page not found" in client.get("/still-no-page").get_data(as_text=True)
