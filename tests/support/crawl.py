"""The forms of a page, as a browser sees them: action, method and fields with their values."""

from __future__ import annotations

import html
from dataclasses import dataclass, field
from html.parser import HTMLParser
from urllib.parse import urljoin, urlsplit


@dataclass
class Form:
    action: str  # a path of the provider
    method: str  # "GET" or "POST"
    fields: dict[str, str] = field(default_factory=dict)  # inputs, selects, textareas (last value)
    buttons: dict[str, list[str]] = field(default_factory=dict)  # submit buttons: name -> values

    def key(self) -> tuple[str, str, tuple[str, ...]]:
        return (self.method, self.action, tuple(sorted(self.fields)))


class _FormParser(HTMLParser):
    def __init__(self, page_path: str) -> None:
        super().__init__(convert_charrefs=True)
        self.page_path = page_path
        self.forms: list[Form] = []
        self.links: list[str] = []
        self._form: Form | None = None
        self._select: str | None = None
        self._textarea: str | None = None

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        a = {k: html.unescape(v or "") for k, v in attrs}
        if tag == "form":
            action = urljoin(self.page_path, a.get("action") or self.page_path)
            self._form = Form(action=action, method=(a.get("method") or "get").upper())
        elif tag == "a" and a.get("href"):
            self.links.append(urljoin(self.page_path, a["href"]))
        elif self._form is None:
            return
        elif tag == "input" and a.get("name"):
            kind = (a.get("type") or "text").lower()
            if kind in ("submit", "image", "button"):
                self._form.buttons.setdefault(a["name"], []).append(a.get("value", ""))
            elif kind in ("checkbox", "radio"):
                if "checked" in a or a["name"] not in self._form.fields:
                    self._form.fields[a["name"]] = a.get("value", "on")
            else:
                self._form.fields[a["name"]] = a.get("value", "")
        elif tag == "button" and a.get("name"):
            self._form.buttons.setdefault(a["name"], []).append(a.get("value", ""))
        elif tag == "select" and a.get("name"):
            self._select = a["name"]
            self._form.fields.setdefault(a["name"], "")
        elif tag == "option" and self._select is not None:
            if not self._form.fields[self._select] or "selected" in a:
                self._form.fields[self._select] = a.get("value", "")
        elif tag == "textarea" and a.get("name"):
            self._textarea = a["name"]
            self._form.fields[a["name"]] = ""

    def handle_data(self, data: str) -> None:
        if self._form is not None and self._textarea is not None:
            self._form.fields[self._textarea] += data

    def handle_endtag(self, tag: str) -> None:
        if tag == "form" and self._form is not None:
            self.forms.append(self._form)
            self._form = None
        elif tag == "select":
            self._select = None
        elif tag == "textarea":
            self._textarea = None


def forms_and_links(page_path: str, body: str) -> tuple[list[Form], list[str]]:
    """The forms and the local links of a page (paths only; other sites are left out)."""
    parser = _FormParser(page_path)
    parser.feed(body)
    local = [u for u in parser.links if not urlsplit(u).netloc or urlsplit(u).netloc == "localhost"]
    forms = [
        f for f in parser.forms if not urlsplit(f.action).netloc or urlsplit(f.action).netloc == "localhost"
    ]
    for form in forms:
        parts = urlsplit(form.action)
        form.action = parts.path + ("?" + parts.query if parts.query else "")
    return forms, local
