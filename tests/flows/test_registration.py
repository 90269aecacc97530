"""Registration against the registers (idp.flows.register.steps): mobile subscriber, social-insurance
code and the population-register check, each ending with an OTP, a password and an account whose
sign-in gives the level the method proves; the three outcomes of seed 000; formats checked before
any register is asked; concurrent registrations of one person; in-person registration by an
operator; prompt=create."""

from __future__ import annotations

import datetime as dt
import html
import re
import threading
from typing import Any
from urllib.parse import urlsplit

import pytest
import time_machine
from click.testing import CliRunner
from sqlalchemy import func, select

from idp.store.models import Account, AuditEvent, IdentityProof, Person, db
from tests.protocol.test_logout import claims_of, sign_in_portal
from tests.support.driver import Browser, csrf_of
from tests.support.outbox import Outbox
from tests.support.passwords import field_errors, post_page_form, text_of, wrong
from tests.support.people import SandboxPerson
from tests.support.registration import (
    DUC,
    HOA,
    LOC,
    MAI,
    NAM,
    PASSWORD,
    Newcomer,
    confirm_phone,
    form_of,
    otp_path,
    register,
    step,
    submit_check,
)


def alert(response: Any) -> str:
    """The text of the page's alert (a form's error, or an outcome page's message)."""
    match = re.search(r'<div class="alert" role="alert"[^>]*>(.*?)</div>', text_of(response), re.S)
    assert match, text_of(response)[:1500]
    return html.unescape(re.sub(r"<[^>]+>", "", match.group(1))).strip()


def id_token_of(browser: Browser, person: Newcomer, password: str = PASSWORD) -> dict[str, Any]:
    who = SandboxPerson(person.id_number, password, person.e164, person.name, 0)
    return claims_of(browser.client, sign_in_portal(browser, who)["id_token"])


def person_row(app: Any, id_number: str) -> Person | None:
    with app.app_context():
        person = db.session.execute(select(Person).where(Person.id_number == id_number)).scalar_one_or_none()
        if person is not None:
            db.session.expunge(person)
        return person


def proofs(app: Any, id_number: str) -> list[tuple[int, str, str, str | None, str | None]]:
    with app.app_context():
        rows = db.session.execute(
            select(
                IdentityProof.level,
                IdentityProof.method,
                IdentityProof.verifier,
                IdentityProof.evidence_id,
                IdentityProof.place,
            )
            .join(Person, IdentityProof.person_id == Person.id)
            .where(Person.id_number == id_number)
            .order_by(IdentityProof.id)
        ).all()
        return [tuple(r) for r in rows]


def test_the_register_page_lists_who_and_how(browser: Browser) -> None:
    page = text_of(browser.client.get("/register"))
    for method in (
        "subscriber",
        "social_insurance",
        "population",
        "sim",
        "usb",
        "enterprise-sim",
        "enterprise-usb",
    ):
        assert f'data-method="{method}"' in page
    assert "Bưu điện" in page  # in person, at a counter or post office
    # Reached from the sign-in pages, carrying the sign-in along.
    response, _ = browser.start()
    login = urlsplit(response.headers["Location"]).path
    ix_id = login.rsplit("/", 1)[1]
    assert f'href="/register?ix={ix_id}"' in text_of(browser.client.get(login))
    assert f'href="/register?ix={ix_id}"' in text_of(browser.client.get(login + "/citizen"))


@pytest.mark.parametrize(
    ("person", "method", "verifier_kind"),
    [
        (DUC, "subscriber", "subscriber"),
        (HOA, "social_insurance", "social-insurance"),
        (LOC, "population", "population"),
    ],
)
def test_each_register_method_end_to_end(
    browser: Browser, app: Any, person: Newcomer, method: str, verifier_kind: str
) -> None:
    done = register(browser, person, method)
    assert "Đăng ký tài khoản thành công" in text_of(done)
    assert "mức xác minh 2" in text_of(done)
    row = person_row(app, person.id_number)
    assert row is not None and row.loa == 2 and row.loa_method == method
    assert row.full_name == person.name
    [(level, proof_method, verifier, evidence, place)] = proofs(app, person.id_number)
    assert (level, proof_method, place) == (2, method, None)
    assert verifier_kind in verifier and verifier.endswith(":sandbox")
    assert evidence  # the register's reference for the check, never its data
    with app.app_context():
        account = db.session.execute(select(Account).where(Account.username == person.id_number)).scalar_one()
        assert [p.number for p in account.phones if p.verified_at] == [person.e164]
        event = db.session.execute(
            select(AuditEvent).where(
                AuditEvent.action == "account.created", AuditEvent.account_id == account.id
            )
        ).scalar_one()
        assert person.id_number not in str(event.detail)  # masked
    claims = id_token_of(Browser(app.test_client(), browser.outbox), person)
    assert claims["acr"] == "LoA2"
    assert claims["amr"] == ["pwd", "otp", "sms", "mfa"]


def test_tone_mark_placement_and_case_do_not_matter(browser: Browser, app: Any) -> None:
    # The register spells "Võ Thị Hòa"; she types "VÕ THỊ HOÀ" (the other tone-mark placement).
    path = otp_path(
        submit_check(browser, "social_insurance", form_of(HOA, "social_insurance", full_name="VÕ THỊ HOÀ"))
    )
    assert confirm_phone(browser, path, HOA.e164).status_code == 302


@pytest.mark.parametrize(
    ("method", "changes", "status", "message"),
    [
        # Seed 000, case 1: already registered (masked, with Quên mật khẩu).
        (
            "subscriber",
            {
                "id_number": "046090001234",
                "full_name": "Nguyễn Văn An",
                "birth_date": "15/03/1990",
                "phone": "0912345678",
            },
            409,
            "Số định danh *********234 đã được đăng ký.",
        ),
        (
            "population",
            {
                "id_number": "046090001234",
                "full_name": "Nguyễn Văn An",
                "birth_date": "15/03/1990",
                "id_issue_date": "12/04/2021",
                "phone": "0912345678",
            },
            409,
            "Số định danh *********234 đã được đăng ký.",
        ),
        (
            "social_insurance",
            {
                "bhxh_code": "4690001234",
                "full_name": "Nguyễn Văn An",
                "birth_date": "15/03/1990",
                "phone": "0912345678",
            },
            409,
            "Số định danh *********234 đã được đăng ký.",
        ),
        # An old CMND account: the CMND is normalized through the register, then found.
        (
            "subscriber",
            {
                "id_number": "191234567",
                "full_name": "Phạm Văn Dũng",
                "birth_date": "04/07/1970",
                "phone": "0903456789",
            },
            409,
            "Số định danh ******567 đã được đăng ký.",
        ),
        # Seed 000, case 2: no matching population record.
        ("subscriber", {"birth_date": "13/07/1988"}, 422, "Không tìm thấy dữ liệu dân cư trùng khớp"),
        ("subscriber", {"full_name": "Phạm Minh Đăng"}, 422, "Không tìm thấy dữ liệu dân cư trùng khớp"),
        ("subscriber", {"id_number": "046088099999"}, 422, "Không tìm thấy dữ liệu dân cư trùng khớp"),
        ("population", {"id_issue_date": "11/05/2021"}, 422, "Không tìm thấy dữ liệu dân cư trùng khớp"),
        ("population", {"phone": "0912345678"}, 422, "Không tìm thấy dữ liệu dân cư trùng khớp"),
        (
            "social_insurance",
            {"birth_date": "12/07/1989"},
            422,
            "không khớp với cơ sở dữ liệu bảo hiểm xã hội",
        ),
        (
            "social_insurance",
            {"bhxh_code": "4600000000"},
            422,
            "không khớp với cơ sở dữ liệu bảo hiểm xã hội",
        ),
        # The phone is somebody else's subscription.
        ("subscriber", {"phone": "0912345678"}, 422, "chưa được đăng ký thuê bao chính chủ"),
    ],
)
def test_the_outcomes_of_the_check(
    browser: Browser, app: Any, method: str, changes: dict[str, str], status: int, message: str
) -> None:
    sent = browser.outbox.count()
    response = submit_check(browser, method, form_of(DUC, method, **changes))
    assert response.status_code == status, text_of(response)[:1500]
    assert message in alert(response)
    if status == 409:
        assert 'href="/password/forgot' in text_of(response)
    assert browser.outbox.count() == sent  # no OTP
    assert person_row(app, DUC.id_number) is None


def test_a_phone_that_is_not_the_persons_own(browser: Browser) -> None:
    response = submit_check(browser, "subscriber", form_of(NAM, "subscriber"))
    assert response.status_code == 422
    assert "091****333" in alert(response) and "TTTB gửi 1414" in alert(response)


@pytest.mark.parametrize(
    ("method", "changes", "field", "message"),
    [
        ("subscriber", {"id_number": "04608801234"}, "id_number", "gồm 12 chữ số"),
        ("population", {"id_number": "191234567"}, "id_number", "gồm 12 chữ số"),
        ("subscriber", {"id_number": "999088012345"}, "id_number", "mã tỉnh"),
        (
            "subscriber",
            {"id_number": "046288012345"},
            "id_number",
            "năm sinh",
        ),  # century digit 2: born in the 2000s
        ("subscriber", {"id_number": "046089012345"}, "id_number", "năm sinh"),
        ("subscriber", {"id_number": "003088012345"}, "id_number", "mã tỉnh"),
        ("subscriber", {"birth_date": "31/02/1988"}, "birth_date", "ngày/tháng/năm"),
        ("subscriber", {"birth_date": "1988-07-12x"}, "birth_date", "ngày/tháng/năm"),
        ("subscriber", {"birth_date": "12/07/2999"}, "birth_date", "không hợp lệ"),
        ("subscriber", {"birth_date": ""}, "birth_date", "Vui lòng nhập ngày sinh"),
        ("subscriber", {"full_name": ""}, "full_name", "Vui lòng nhập họ và tên"),
        ("subscriber", {"full_name": "Đức 2"}, "full_name", "chỉ gồm chữ cái"),
        ("subscriber", {"phone": "0123456789"}, "phone", "10 chữ số"),
        ("subscriber", {"phone": "09031112"}, "phone", "10 chữ số"),
        ("subscriber", {"email": "duc@"}, "email", "thư điện tử"),
        ("social_insurance", {"bhxh_code": "468801234"}, "bhxh_code", "10 chữ số"),
        ("population", {"id_issue_date": ""}, "id_issue_date", "ngày cấp"),
    ],
)
def test_formats_are_checked_before_any_register(
    browser: Browser, method: str, changes: dict[str, str], field: str, message: str
) -> None:
    response = submit_check(browser, method, form_of(DUC, method, **changes))
    assert response.status_code == 400
    page = text_of(response)
    assert f'id="{field}-error"' in page, page[:3000]
    assert message in page.split(f'id="{field}-error">', 1)[1].split("</p>", 1)[0]
    assert f'id="{field}" name="{field}"' in page


def test_the_health_insurance_card_code_is_accepted_for_the_social_insurance_code(browser: Browser) -> None:
    """People copy the 15-character code on their health-insurance card (two letters, benefit
    level, province, then the 10-digit code): the identifier rules accept it, so does the form."""
    assert HOA.bhxh_code is not None
    card = "DN446" + HOA.bhxh_code
    response = submit_check(browser, "social_insurance", form_of(HOA, "social_insurance", bhxh_code=card))
    otp_path(response)  # the register was asked and matched: the OTP step comes next


@pytest.mark.parametrize(
    ("birth_date", "accepted"),
    [
        pytest.param("07/12/2026", True, id="born-today-in-vietnam"),
        pytest.param("08/12/2026", False, id="tomorrow-in-vietnam"),
    ],
)
def test_birth_dates_are_judged_by_vietnams_calendar_day(
    browser: Browser, birth_date: str, accepted: bool
) -> None:
    """At 00:30 in Vietnam (17:30 UTC the day before) a child born today is born today."""
    with time_machine.travel(dt.datetime(2026, 12, 6, 17, 30, tzinfo=dt.UTC), tick=True):
        response = submit_check(browser, "subscriber", form_of(DUC, "subscriber", birth_date=birth_date))
    assert response.status_code == 400  # DUC's ID number says 1988: the form is refused either way
    page = text_of(response)
    assert ('id="birth_date-error"' not in page) is accepted, page[:3000]


def test_the_otp_step(browser: Browser, app: Any, outbox: Outbox) -> None:
    path = otp_path(submit_check(browser, "subscriber", form_of(DUC, "subscriber")))
    page = text_of(browser.client.get(path))
    assert "090****222" in page  # masked
    code = outbox.last_code(DUC.e164)
    response = post_page_form(browser, path, otp=wrong(code))
    assert response.status_code == 401 and "Bạn còn 4 lần thử" in alert(response)
    # The password page is not reachable before the phone is confirmed.
    assert urlsplit(browser.client.get(step(path, "password")).headers["Location"]).path == path
    # Resend waits for the cooldown.
    resend = browser.client.post(step(path, "resend"), data={"csrf_token": csrf_of(page)})
    assert resend.status_code == 429 and "giây" in alert(resend)
    # Another browser cannot continue this registration.
    other = app.test_client()
    assert other.get(path).status_code == 400
    assert "Phiên đăng ký đã hết hạn" in text_of(other.get(path))
    assert confirm_phone(browser, path, DUC.e164).status_code == 302


def test_the_password_step_applies_the_policy(browser: Browser, app: Any) -> None:
    path = otp_path(submit_check(browser, "subscriber", form_of(DUC, "subscriber")))
    confirm_phone(browser, path, DUC.e164)
    password_path = step(path, "password")
    page = text_of(browser.client.get(password_path))
    assert "8 ký tự" in page  # the policy is shown before the person types
    for bad, expected in [
        ("abc", "ít nhất 8 ký tự"),
        ("Duc@046088012345", "số định danh"),
        ("Duc@0903111222x", "số điện thoại"),
    ]:
        response = post_page_form(browser, password_path, new_password=bad, confirm_password=bad)
        assert response.status_code == 400
        assert any(expected in problem for problem in field_errors(response)), field_errors(response)
    response = post_page_form(browser, password_path, new_password=PASSWORD, confirm_password=PASSWORD + "x")
    assert response.status_code == 400 and "chưa giống nhau" in text_of(response)
    assert person_row(app, DUC.id_number) is None  # nothing written before the last step
    response = post_page_form(browser, password_path, new_password=PASSWORD, confirm_password=PASSWORD)
    assert response.status_code == 302
    # A second submission of the same registration does not register twice.
    again = browser.client.post(
        password_path,
        data={"csrf_token": csrf_of(page), "new_password": PASSWORD, "confirm_password": PASSWORD},
    )
    assert again.status_code == 302 and urlsplit(again.headers["Location"]).path == step(path, "done")
    with app.app_context():
        assert (
            db.session.execute(
                select(func.count()).select_from(Person).where(Person.id_number == DUC.id_number)
            ).scalar_one()
            == 1
        )


def test_two_concurrent_registrations_of_one_person(app: Any, outbox: Outbox) -> None:
    """Two browsers reach the last step for the same ID number and submit at the same moment:
    exactly one account; the other sees "already registered"."""
    browsers = [Browser(app.test_client(), outbox) for _ in range(2)]
    paths = []
    for b in browsers:
        path = otp_path(submit_check(b, "subscriber", form_of(DUC, "subscriber")))
        assert confirm_phone(b, path, DUC.e164).status_code == 302
        paths.append(step(path, "password"))
    forms = [csrf_of(text_of(b.client.get(p))) for b, p in zip(browsers, paths, strict=True)]
    barrier = threading.Barrier(2)
    results: list[Any] = [None, None]

    def submit(i: int) -> None:
        barrier.wait()
        results[i] = browsers[i].client.post(
            paths[i], data={"csrf_token": forms[i], "new_password": PASSWORD, "confirm_password": PASSWORD}
        )

    threads = [threading.Thread(target=submit, args=(i,)) for i in range(2)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(30)
    statuses = sorted(r.status_code for r in results)
    assert statuses == [302, 409], [text_of(r)[:500] for r in results]
    loser = next(r for r in results if r.status_code == 409)
    assert "Số định danh *********345 đã được đăng ký." in alert(loser)
    with app.app_context():
        count = db.session.execute(
            select(func.count()).select_from(Person).where(Person.id_number == DUC.id_number)
        )
        assert count.scalar_one() == 1
        assert (
            db.session.execute(
                select(func.count()).select_from(Account).where(Account.username == DUC.id_number)
            ).scalar_one()
            == 1
        )


def test_register_checks_are_capped_per_address(make_app: Any, outbox: Outbox) -> None:
    app = make_app(REGISTRATION_CHECKS_PER_HOUR=2)
    browser = Browser(app.test_client(), outbox)
    for _ in range(2):
        assert (
            submit_check(
                browser, "subscriber", form_of(DUC, "subscriber", birth_date="13/07/1988")
            ).status_code
            == 422
        )
    response = submit_check(browser, "subscriber", form_of(DUC, "subscriber"))
    assert response.status_code == 429 and "thử lại sau" in alert(response)


def test_prompt_create_opens_registration_and_returns_to_the_sign_in(browser: Browser, app: Any) -> None:
    response, auth = browser.start(prompt="create")
    response = browser.follow(response)
    assert response.request.path == "/register"
    ix_id = response.request.args["ix"]
    done = register(browser, LOC, "population", ix=ix_id)
    sign_in = f'href="/login/{ix_id}/door/citizen"'
    assert sign_in in text_of(done)
    login = browser.follow(browser.client.get(f"/login/{ix_id}/door/citizen"))
    assert f'value="{LOC.id_number}"' in text_of(login)  # the new ID number is already typed
    response = browser.submit_password(login.request.path, LOC.id_number, PASSWORD)
    assert response.status_code == 302
    response = browser.follow(
        browser.submit_otp(response.headers["Location"], browser.outbox.last_code(LOC.e164))
    )
    assert response.status_code == 302
    assert "code=" in response.headers["Location"]


def test_discovery_advertises_prompt_create(client: Any) -> None:
    assert "create" in client.get("/.well-known/openid-configuration").json["prompt_values_supported"]


# -- in person: a counter or a post office ---------------------------------------------------
def run_cli(app: Any, *args: str) -> Any:
    from idp.cli import main

    runner = CliRunner()
    return runner.invoke(main, list(args), obj=app, catch_exceptions=False)


IN_PERSON = [
    "accounts",
    "register-in-person",
    "--id-number",
    MAI.id_number,
    "--name",
    MAI.name,
    "--birth-date",
    MAI.birth_date,
    "--gender",
    "female",
    "--phone",
    MAI.phone,
    "--at",
    "post-office",
    "--place",
    "Bưu điện Huế, 8 Hoàng Hoa Thám",
    "--operator",
    "hoa.nv",
]


@pytest.fixture
def operator(app_config: dict[str, Any], app: Any) -> Any:
    """`idp …` as an operator runs it, against the test's PostgreSQL, Redis and SMS outbox."""
    from idp.cli import main

    names = (
        "ISSUER",
        "SANDBOX_VERIFIERS_ALLOWED",
        "DATABASE_URL",
        "REDIS_URL",
        "REDIS_PREFIX",
        "KEYS_DIR",
        "CLIENTS_FILE",
        "SMS_OUTBOX",
        "ARGON2_MEMORY_KIB",
        "ARGON2_TIME_COST",
    )
    env = {f"IDP_{name}": str(app_config[name]) for name in names}

    def run(*args: str) -> Any:
        return CliRunner().invoke(main, list(args), env=env, catch_exceptions=False)

    return run


def test_in_person_registration_gives_level_3(
    operator: Any, app: Any, browser: Browser, outbox: Outbox
) -> None:
    result = operator(*IN_PERSON)
    assert result.exit_code == 0, result.output
    assert '"loa": "LoA3"' in result.output and MAI.id_number not in result.output
    row = person_row(app, MAI.id_number)
    assert row is not None and row.loa == 3 and row.loa_method == "post_office"
    [(level, method, verifier, evidence, place)] = proofs(app, MAI.id_number)
    assert (level, method, verifier, place) == (
        3,
        "post_office",
        "operator:hoa.nv",
        "Bưu điện Huế, 8 Hoàng Hoa Thám",
    )
    assert evidence and evidence.startswith("post_office:")
    with app.app_context():
        account = db.session.execute(select(Account).where(Account.username == MAI.id_number)).scalar_one()
        assert account.password_hash is None  # operators never see or set passwords
    assert "/password/forgot" in outbox.last(MAI.e164)["text"]
    # She sets her password with "Quên mật khẩu", then signs in at level 3.
    from tests.flows.test_password_reset import reset_to

    who = SandboxPerson(MAI.id_number, PASSWORD, MAI.e164, MAI.name, 3)
    assert reset_to(browser, who, PASSWORD).status_code == 302
    claims = id_token_of(Browser(app.test_client(), outbox), MAI)
    assert claims["acr"] == "LoA3"


@pytest.mark.parametrize(
    ("changes", "message"),
    [
        ({"--birth-date": "22/12/1987"}, "no matching population record"),
        (
            {
                "--id-number": "046090001234",
                "--name": "Nguyễn Văn An",
                "--birth-date": "15/03/1990",
                "--gender": "male",
            },
            "already registered",
        ),
        ({"--id-number": "04618706789"}, "12 digits"),
        ({"--phone": "0123"}, "phone number"),
    ],
)
def test_in_person_registration_refuses(
    operator: Any, app: Any, changes: dict[str, str], message: str
) -> None:
    args = list(IN_PERSON)
    for option, value in changes.items():
        args[args.index(option) + 1] = value
    result = operator(*args)
    assert result.exit_code != 0
    assert message in result.output
    assert person_row(app, MAI.id_number) is None


@pytest.mark.parametrize(
    ("overrides", "named"),
    [
        ({}, "IDP_REGISTERS"),
        (
            {
                "REGISTERS": "http",
                "POPULATION_REGISTER_URL": "https://pop.example.vn",
                "SUBSCRIBER_REGISTER_URL": "https://sub.example.vn",
                "SOCIAL_INSURANCE_REGISTER_URL": "https://bhxh.example.vn",
            },
            "IDP_SIM_SIGNING_MODE",
        ),
    ],
)
def test_sandbox_verifiers_are_refused_on_a_real_deployment(
    base_config: dict[str, Any], overrides: dict[str, str], named: str
) -> None:
    """Fictional people and published PINs must not register anyone outside a test system."""
    from idp import create_app
    from idp.config import ConfigError

    config = {**base_config, "SANDBOX_VERIFIERS_ALLOWED": False, **overrides}
    with pytest.raises(ConfigError, match=named):
        create_app(config)
