"""Registration with a digital-signature certificate (seed 003): "Sim ký số" and "USB ký số" for
citizens and enterprises, through the sandbox signing devices; the account's level (LoA3) in the
next ID token; duplicates by ID number and tax code; every refusal of the certificate with its own
message and nothing written; concurrent enterprise registrations; raising LoA2 to LoA3 on
/account/assurance."""

from __future__ import annotations

import threading
from typing import Any

import pytest
from sqlalchemy import func, select

from idp.store.models import (
    Account,
    AuditEvent,
    IdentityProof,
    Organization,
    Person,
    db,
)
from tests.protocol.test_logout import claims_of, sign_in_portal
from tests.support.account import open_account
from tests.support.clients import PORTAL_CALLBACK
from tests.support.driver import Browser, csrf_of, query_of
from tests.support.org import OrgDoor
from tests.support.outbox import Outbox
from tests.support.passwords import text_of
from tests.support.people import AN, SandboxPerson
from tests.support.signing import (
    PASSWORD,
    Holder,
    alert,
    forged,
    location,
    plugin_sign,
    post_page,
    post_signature,
    send,
    sim_answer,
)
from tests.support.tokens import CALLBACKS, exchange, userinfo, verify_jwt

# The sandbox PKI's holders (registers.json: the `certificate` entries).
TRANG = Holder("046198045678", "Đặng Thu Trang", "046198045678", "246810", "0767890123")
HUY = Holder("046083056789", "Bùi Quang Huy", "046083056789", "135790")
AN_TOKEN = Holder("046090001234", "Nguyễn Văn An", "046090001234", "123456")
SEN_VANG = Holder("0100233488", "Công ty TNHH Sen Vàng", "0100233488", "112233")
HUONG_GIANG = Holder("3301234568", "Công ty Cổ phần Hương Giang Số", "3301234568", "445566")
BEN_NGU = Holder("3109876545", "Công ty TNHH Dịch vụ Bến Ngự", "3109876545", "778899", "0909555666")
TAM = Holder("046075031122", "Lương Văn Tâm", "191555222", "975310")  # his certificate: "CMND:191555222"
TAM_PHONE = "0914222333"
KHAI = Holder("046095088888", "Đoàn Văn Khải", "046095088888", "000000")  # revoked by the sandbox CA
HUY_PHONE = "0945678901"
ADMIN_PHONE = "0905123123"


# -- helpers ------------------------------------------------------------------------------------------
def start_usb(browser: Browser, kind: str) -> str:
    """The USB page's "Đăng ký": returns the plugin page's path."""
    path = location(post_page(browser, f"/register/{kind}/usb"))
    assert path.endswith("/usb"), path
    return path


def start_sim(browser: Browser, kind: str, phone: str) -> str:
    path = location(post_page(browser, f"/register/{kind}/sim", phone=phone))
    assert path.endswith("/sim"), path
    return path


def step(path: str, name: str) -> str:
    return path.rsplit("/", 1)[0] + "/" + name


def usb_verified(browser: Browser, kind: str, holder: Holder) -> str:
    """USB registration up to the page showing the certificate's information; returns its path."""
    sign_page = start_usb(browser, kind)
    response = send(browser, plugin_sign(browser, sign_page, holder))
    path = location(response)
    assert path == step(sign_page, "certificate"), path
    return path


def sim_verified(browser: Browser, kind: str, holder: Holder) -> str:
    wait = start_sim(browser, kind, holder.phone or "")
    assert location(sim_answer(browser, holder.phone or "", holder.pin)) == "/sandbox/sim"
    response = post_page(browser, wait)
    path = location(response)
    assert path == step(wait, "certificate"), path
    return path


def phone_step(browser: Browser, info: str, phone: str) -> str:
    """USB: the phone typed on the information page, then its OTP; returns the password page."""
    otp = location(post_page(browser, info, phone=phone))
    assert otp == step(info, "otp"), otp
    response = post_page(browser, otp, otp=browser.outbox.last_code("+84" + phone[1:]))
    path = location(response)
    assert path == step(info, "password"), path
    return path


def finish(browser: Browser, password_page: str, **extra: str) -> Any:
    response = post_page(browser, password_page, new_password=PASSWORD, confirm_password=PASSWORD, **extra)
    assert location(response) == step(password_page, "done"), text_of(response)[:3000]
    done = browser.client.get(step(password_page, "done"))
    assert done.status_code == 200
    return done


def fresh(app: Any, outbox: Outbox) -> Browser:
    return Browser(app.test_client(), outbox)


def count(app: Any, model: Any, *where: Any) -> int:
    with app.app_context():
        stmt = select(func.count()).select_from(model)
        for condition in where:
            stmt = stmt.where(condition)
        return int(db.session.execute(stmt).scalar_one())


def person_of(app: Any, id_number: str) -> tuple[int, str, str] | None:
    with app.app_context():
        row = db.session.execute(
            select(Person.loa, Person.loa_method, Person.loa_verifier).where(Person.id_number == id_number)
        ).first()
        return tuple(row) if row else None  # type: ignore[return-value]


def written(app: Any) -> tuple[int, int, int, int]:
    """Rows that a registration writes: persons, accounts, organizations, proofs."""
    return (
        count(app, Person),
        count(app, Account),
        count(app, Organization),
        count(app, IdentityProof),
    )


def citizen_id_token(app: Any, outbox: Outbox, holder: Holder, phone_e164: str) -> dict[str, Any]:
    who = SandboxPerson(holder.number, PASSWORD, phone_e164, holder.name, 3)
    return claims_of(app.test_client(), sign_in_portal(fresh(app, outbox), who)["id_token"])


def org_tokens(
    app: Any, outbox: Outbox, username: str, phone_e164: str
) -> tuple[dict[str, Any], dict[str, Any]]:
    """Sign in through the organization door (password, SMS OTP, skip the authenticator offer):
    the ID token's claims and userinfo (which names the organization, Core §5.4)."""
    door = OrgDoor(fresh(app, outbox))
    response = door.password(username, PASSWORD, scope="openid profile organization")
    assert location(response).endswith("/organization/sms"), text_of(response)[:1500]
    response = door.post(door.path("sms"), otp=outbox.last_code(phone_e164))
    assert location(response).endswith("/organization/authenticator")
    page = door.client.get(door.path("authenticator"))
    response = door.client.post(door.path("continue"), data={"csrf_token": csrf_of(text_of(page))})
    response = door.browser.follow(response)
    callback = response.headers["Location"]
    assert callback.startswith(PORTAL_CALLBACK + "?"), callback
    tokens = exchange(door.client, query_of(callback)["code"], door.auth)
    assert tokens.status_code == 200, tokens.json
    info = userinfo(door.client, tokens.json["access_token"])
    assert info.status_code == 200, info.json
    return verify_jwt(door.client, tokens.json["id_token"])[1], info.json


# -- citizens -----------------------------------------------------------------------------------------
def test_the_start_pages(browser: Browser) -> None:
    for kind in ("citizen", "enterprise"):
        sim = text_of(browser.client.get(f"/register/{kind}/sim"))
        assert 'name="phone"' in sim and "Sim ký số" in sim
        usb = text_of(browser.client.get(f"/register/{kind}/usb"))
        assert "USB ký số" in usb and 'name="phone"' not in usb
    # The register-based methods keep their own pages.
    assert browser.client.get("/register/citizen/subscriber").status_code == 200


def test_citizen_registers_with_the_sim(app: Any, browser: Browser, outbox: Outbox) -> None:
    wait = start_sim(browser, "citizen", TRANG.phone or "")
    page = text_of(browser.client.get(wait))
    assert "076****123" in page and "Tôi đã xác nhận trên điện thoại" in page
    assert browser.client.get(wait + "/status").json == {"state": "pending"}
    # Pressing the button before confirming on the phone: still waiting, said so.
    pending = post_page(browser, wait)
    assert pending.status_code == 200 and "Chưa nhận được xác nhận" in text_of(pending)
    # The SIM's "phone" shows the request naming the portal and the page's confirmation code.
    sim_page = text_of(browser.client.get("/sandbox/sim", query_string={"phone": TRANG.phone}))
    assert "Môi trường thử nghiệm (sandbox)" in sim_page and "Cổng dịch vụ công" in sim_page
    code = page.split('id="confirmation-code">', 1)[1][:4]
    assert code in sim_page
    wrong_pin = sim_answer(browser, TRANG.phone or "", "000000")
    assert wrong_pin.status_code == 403 and "Mã PIN không đúng" in alert(wrong_pin)
    assert location(sim_answer(browser, TRANG.phone or "", TRANG.pin)) == "/sandbox/sim"
    assert browser.client.get(wait + "/status").json == {"state": "signed"}
    info = location(post_page(browser, wait))
    shown = text_of(browser.client.get(info))
    assert "được lấy từ Sim ký số" in shown and TRANG.name in shown and TRANG.number in shown
    sent = outbox.count(TRANG.e164)
    password_page = location(post_page(browser, info))
    assert password_page == step(info, "password")  # the SIM proved the phone: no OTP
    assert outbox.count(TRANG.e164) == sent
    done = finish(browser, password_page)
    assert "mức xác minh 3" in text_of(done)
    assert person_of(app, TRANG.number) == (3, "sim", person_of(app, TRANG.number)[2])  # type: ignore[index]
    assert person_of(app, TRANG.number)[2].startswith("signature:")  # type: ignore[index]
    with app.app_context():
        account = db.session.execute(select(Account).where(Account.username == TRANG.number)).scalar_one()
        assert [p.number for p in account.phones if p.verified_at] == [TRANG.e164]
        proof = db.session.execute(
            select(IdentityProof).where(IdentityProof.person_id == account.person_id)
        ).scalar_one()
        assert (proof.level, proof.method) == (3, "sim") and (proof.evidence_id or "").startswith("sha256:")
    claims = citizen_id_token(app, outbox, TRANG, TRANG.e164)
    assert claims["acr"] == "LoA3"


def test_citizen_registers_with_the_usb_token(app: Any, browser: Browser, outbox: Outbox) -> None:
    info = usb_verified(browser, "citizen", HUY)
    shown = text_of(browser.client.get(info))
    assert "được lấy từ USB ký số" in shown and HUY.name in shown
    password_page = phone_step(browser, info, HUY_PHONE)
    page = text_of(browser.client.get(password_page))
    assert 'name="email"' in page and 'name="username"' not in page  # e-mail optional for a citizen
    done = finish(browser, password_page, email="huy.bui@example.vn")
    assert "mức xác minh 3" in text_of(done)
    loa, method, _verifier = person_of(app, HUY.number)  # type: ignore[misc]
    assert (loa, method) == (3, "usb")
    with app.app_context():
        person = db.session.execute(select(Person).where(Person.id_number == HUY.number)).scalar_one()
        assert person.email == "huy.bui@example.vn"
        event = (
            db.session.execute(
                select(AuditEvent)
                .where(AuditEvent.action == "account.created")
                .order_by(AuditEvent.id.desc())
            )
            .scalars()
            .first()
        )
        assert event is not None and HUY.number not in str(event.detail)
    claims = citizen_id_token(app, outbox, HUY, "+84" + HUY_PHONE[1:])
    assert claims["acr"] == "LoA3"


def test_a_certificate_naming_only_an_old_cmnd(app: Any, browser: Browser, outbox: Outbox) -> None:
    """The certificate names the 9-digit CMND only: the birth date is asked, the population register
    gives the 12-digit number, and the account keeps both (sign-in with either, LoA3)."""
    info = usb_verified(browser, "citizen", TAM)
    page = text_of(browser.client.get(info))
    assert 'name="birth_date"' in page and TAM.name in page
    before = written(app)
    wrong = post_page(browser, info, phone=TAM_PHONE, birth_date="17/08/1975")
    assert wrong.status_code == 422, text_of(wrong)[:2000]
    assert "Không tìm thấy dữ liệu dân cư trùng khớp với số chứng minh nhân dân" in alert(wrong)
    assert written(app) == before
    otp = location(post_page(browser, info, phone=TAM_PHONE, birth_date="16/08/1975"))
    assert otp == step(info, "otp"), otp
    response = post_page(browser, otp, otp=outbox.last_code("+84" + TAM_PHONE[1:]))
    assert location(response) == step(info, "password")
    done = finish(browser, step(info, "password"))
    assert "mức xác minh 3" in text_of(done)
    with app.app_context():
        person = db.session.execute(select(Person).where(Person.legacy_id_number == "191555222")).scalar_one()
        assert (person.id_number, person.loa, person.loa_method) == ("046075031122", 3, "usb")
        assert person.birth_date.isoformat() == "1975-08-16"
    for login in ("191555222", "046075031122"):
        claims = citizen_id_token(app, outbox, Holder(login, TAM.name, login, TAM.pin), "+84" + TAM_PHONE[1:])
        assert claims["acr"] == "LoA3"


def test_an_id_number_registered_already(app: Any, browser: Browser) -> None:
    before = written(app)
    response = send(browser, plugin_sign(browser, start_usb(browser, "citizen"), AN_TOKEN))
    assert response.status_code == 409
    assert alert(response) == "Số định danh *********234 đã được đăng ký."
    assert "Quên mật khẩu" in text_of(response)
    assert written(app) == before


def test_an_old_cmnd_registered_already(app: Any, browser: Browser) -> None:
    """A certificate naming a 9-digit CMND: the duplicate check uses the old number too."""
    before = written(app)
    sign_page = start_usb(browser, "citizen")
    key, chain = forged(
        app.extensions["idp"].signing.sandbox, "valid", "", "Phạm Văn Dũng", uid="CMND:191234567"
    )
    response = post_signature(browser, sign_page, key, chain)
    assert response.status_code == 409, text_of(response)[:2000]
    assert alert(response) == "Số định danh ******567 đã được đăng ký."
    assert written(app) == before


# -- enterprises ---------------------------------------------------------------------------------------
def test_enterprise_registers_with_the_usb_token(app: Any, browser: Browser, outbox: Outbox) -> None:
    info = usb_verified(browser, "enterprise", HUONG_GIANG)
    shown = text_of(browser.client.get(info))
    assert HUONG_GIANG.name in shown and HUONG_GIANG.number in shown
    password_page = phone_step(browser, info, ADMIN_PHONE)
    page = text_of(browser.client.get(password_page))
    for name in ("username", "admin_name", "email"):
        assert f'name="{name}"' in page
    assert 'value="huonggiangso.admin"' in page  # a suggested username
    # The e-mail is required for an enterprise; a bad username is said next to its field.
    refused = post_page(
        browser, password_page, new_password=PASSWORD, confirm_password=PASSWORD,
        username="1x", admin_name="Trần Văn Quản", email="",
    )  # fmt: skip
    assert refused.status_code == 400
    assert "Doanh nghiệp phải có địa chỉ thư điện tử." in text_of(refused)
    assert 'id="username-error"' in text_of(refused)
    done = finish(
        browser, password_page, username="huonggiang.admin", admin_name="Trần Văn Quản",
        email="info@huonggiangso.example.vn",
    )  # fmt: skip
    assert "huonggiang.admin" in text_of(done) and "mức xác minh 3" in text_of(done)
    with app.app_context():
        org = db.session.execute(
            select(Organization).where(Organization.code == HUONG_GIANG.number)
        ).scalar_one()
        assert (org.kind, org.code_type, org.email) == ("enterprise", "tax", "info@huonggiangso.example.vn")
        [account] = org.accounts
        assert (account.username, [r.role for r in account.roles]) == ("huonggiang.admin", ["admin"])
        assert account.person is not None and account.person.full_name == "Trần Văn Quản"
        assert [p.number for p in account.phones if p.verified_at] == ["+84" + ADMIN_PHONE[1:]]
        proof = db.session.execute(
            select(IdentityProof).where(IdentityProof.organization_id == org.id)
        ).scalar_one()
        assert (proof.level, proof.method) == (3, "usb")
        actions = (
            db.session.execute(select(AuditEvent.action).where(AuditEvent.account_id == account.id))
            .scalars()
            .all()
        )
        assert {"organization.registered", "account.created"} <= set(actions)
    claims, info = org_tokens(app, outbox, "huonggiang.admin", "+84" + ADMIN_PHONE[1:])
    assert claims["acr"] == "LoA3"
    assert info["organization"] == {
        "code": HUONG_GIANG.number, "code_type": "tax", "name": HUONG_GIANG.name, "kind": "enterprise",
    }  # fmt: skip
    assert info["staff"] == {"username": "huonggiang.admin", "name": "Trần Văn Quản", "roles": ["admin"]}


def test_enterprise_registers_with_the_sim(app: Any, browser: Browser, outbox: Outbox) -> None:
    info = sim_verified(browser, "enterprise", BEN_NGU)
    password_page = location(post_page(browser, info))
    assert password_page == step(info, "password")
    page = text_of(browser.client.get(password_page))
    assert 'value="benngu@example.vn"' in page  # the e-mail from the certificate, prefilled
    finish(
        browser, password_page, username="benngu.admin", admin_name="Lê Thị Ngự", email="benngu@example.vn"
    )
    claims, info = org_tokens(app, outbox, "benngu.admin", BEN_NGU.e164)
    assert info["organization"]["code"] == BEN_NGU.number
    assert claims["acr"] == "LoA3"


def test_a_tax_code_registered_already(app: Any, browser: Browser) -> None:
    before = written(app)
    response = send(browser, plugin_sign(browser, start_usb(browser, "enterprise"), SEN_VANG))
    assert response.status_code == 409
    assert alert(response) == "Mã số thuế *******488 đã được đăng ký."
    assert written(app) == before


@pytest.mark.parametrize(
    ("kind", "holder", "message"),
    [
        ("enterprise", HUY, "Chứng thư số này là của cá nhân"),
        ("citizen", HUONG_GIANG, "Chứng thư số này là của doanh nghiệp"),
    ],
)
def test_a_certificate_on_the_wrong_door(
    app: Any, browser: Browser, kind: str, holder: Holder, message: str
) -> None:
    before = written(app)
    response = send(browser, plugin_sign(browser, start_usb(browser, kind), holder))
    assert response.status_code == 422
    assert alert(response).startswith(message)
    assert written(app) == before


def test_two_concurrent_enterprise_registrations(app: Any, outbox: Outbox) -> None:
    """Two browsers register the same tax code at once (PostgreSQL decides): one organization."""
    browsers = [fresh(app, outbox), fresh(app, outbox)]
    pages = []
    for i, b in enumerate(browsers):
        info = usb_verified(b, "enterprise", HUONG_GIANG)
        pages.append(phone_step(b, info, f"090512312{i}"))
    forms = [csrf_of(text_of(b.client.get(p))) for b, p in zip(browsers, pages, strict=True)]
    barrier = threading.Barrier(2)
    results: list[Any] = [None, None]

    def submit(i: int) -> None:
        barrier.wait()
        results[i] = browsers[i].client.post(
            pages[i],
            data={
                "csrf_token": forms[i], "new_password": PASSWORD, "confirm_password": PASSWORD,
                "username": f"huonggiang.admin{i}", "admin_name": "Trần Văn Quản",
                "email": "info@huonggiangso.example.vn",
            },
        )  # fmt: skip

    threads = [threading.Thread(target=submit, args=(i,)) for i in range(2)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(30)
    statuses = sorted(r.status_code for r in results)
    assert statuses == [302, 409], [text_of(r)[:500] for r in results]
    loser = next(r for r in results if r.status_code == 409)
    assert alert(loser) == "Mã số thuế *******568 đã được đăng ký."
    assert count(app, Organization, Organization.code == HUONG_GIANG.number) == 1
    assert count(app, Account, Account.username.in_(["huonggiang.admin0", "huonggiang.admin1"])) == 1


# -- refusals -------------------------------------------------------------------------------------------
def test_the_sandbox_usb_token_locks_after_five_wrong_pins(app: Any, browser: Browser) -> None:
    """Like a real token: consecutive wrong PINs count down, the fifth locks it (even the right PIN
    is refused then), a right PIN before that starts the count again; other tokens are not touched."""
    import html

    from tests.support.signing import SANDBOX_LINK, hidden

    page = text_of(browser.client.get(start_usb(browser, "citizen")))
    link = SANDBOX_LINK.search(page)
    assert link is not None
    body = text_of(browser.client.get(html.unescape(link.group(1))))

    def sign(holder: Holder, pin: str) -> Any:
        fields = {
            "csrf_token": csrf_of(body),
            "data": hidden(body, "data"),
            "return_to": hidden(body, "return_to"),
        }
        return browser.client.post("/sandbox/usb-token", data={**fields, "holder": holder.key, "pin": pin})

    for left in (4, 3):
        answer = sign(HUY, "999999")
        assert answer.status_code == 403 and f"Bạn còn {left} lần nhập" in text_of(answer)
    assert sign(HUY, HUY.pin).status_code == 200  # the count starts again
    for left in (4, 3, 2, 1, 0):
        answer = sign(HUY, "999999")
        assert answer.status_code == 403 and f"Bạn còn {left} lần nhập" in text_of(answer)
    locked = sign(HUY, HUY.pin)
    assert locked.status_code == 423 and "USB ký số đã bị khóa vì nhập sai mã PIN 5 lần liên tiếp" in text_of(
        locked
    )
    assert sign(AN_TOKEN, AN_TOKEN.pin).status_code == 200


@pytest.mark.parametrize("what", ["expired", "unknown_issuer", "key_usage"])
def test_a_refused_certificate(app: Any, browser: Browser, what: str) -> None:
    """Certificates the verifier refuses, each with its own message; nothing is written."""
    before = written(app)
    sign_page = start_usb(browser, "citizen")
    key, chain = forged(app.extensions["idp"].signing.sandbox, what, HUY.number, HUY.name)
    response = post_signature(browser, sign_page, key, chain)
    assert response.status_code == 422, text_of(response)[:2000]
    assert alert(response) == refusal(what.upper())
    assert written(app) == before


def test_a_revoked_certificate(app: Any, browser: Browser) -> None:
    before = written(app)
    response = send(browser, plugin_sign(browser, start_usb(browser, "citizen"), KHAI))
    assert response.status_code == 422
    assert alert(response) == refusal("REVOKED")
    assert written(app) == before


def test_refusal_messages_differ() -> None:
    from idp.verifiers import signature

    texts = {refusal_text_of(reason) for reason in signature.REASONS}
    assert len(texts) == len(signature.REASONS)


def refusal_text_of(reason: str) -> str:
    from idp.web.signing import refusal_message

    return str(refusal_message(reason))


def test_a_signature_over_another_challenge(app: Any, browser: Browser) -> None:
    before = written(app)
    first = plugin_sign(browser, start_usb(browser, "citizen"), HUY)
    second_page = start_usb(browser, "citizen")  # a new registration, a new challenge
    response = browser.client.post(step(second_page, "signature"), data=first.fields)
    assert response.status_code == 422
    assert alert(response) == refusal("BAD_SIGNATURE")
    assert written(app) == before


def test_a_replayed_signature(app: Any, browser: Browser) -> None:
    signed = plugin_sign(browser, start_usb(browser, "citizen"), HUY)
    accepted = location(send(browser, signed))
    assert accepted.endswith("/certificate")
    before = written(app)
    # The page session was renewed once the certificate was proven: the old form token is refused.
    assert send(browser, signed).status_code == 400
    fresh = csrf_of(text_of(browser.client.get(accepted)))
    again = send(browser, signed, csrf_token=fresh)
    assert again.status_code == 422
    assert alert(again) == refusal("CHALLENGE")
    assert written(app) == before


def test_a_refused_sim_request(app: Any, browser: Browser) -> None:
    before = written(app)
    wait = start_sim(browser, "citizen", TRANG.phone or "")
    assert location(sim_answer(browser, TRANG.phone or "", None, decision="refuse")) == "/sandbox/sim"
    assert browser.client.get(wait + "/status").json == {"state": "refused"}
    response = post_page(browser, wait)
    assert response.status_code == 409 and "từ chối" in alert(response)
    assert written(app) == before


def refusal(name: str) -> str:
    from idp.verifiers import signature
    from idp.web.signing import refusal_text

    return refusal_text(getattr(signature, name))


# -- raising the level on /account/assurance ----------------------------------------------------------------
def test_an_raises_his_level_with_the_usb_token(app: Any, browser: Browser, outbox: Outbox) -> None:
    page = open_account(browser, AN, "/account")
    assert "/account/assurance" in text_of(page)
    page = open_account(browser, AN, "/account/assurance")
    assert page.status_code == 200 and "Mức 2" in text_of(page)
    assert "Nâng mức xác minh lên mức 3" in text_of(page)
    # Someone else's certificate: refused, nothing written.
    proofs = count(app, IdentityProof)
    start = browser.client.post("/account/assurance/usb", data={"csrf_token": csrf_of(text_of(page))})
    response = send(browser, plugin_sign(browser, location(start), HUY))
    assert response.status_code == 422
    assert "mang số định danh khác" in alert(response)
    assert count(app, IdentityProof) == proofs and person_of(app, AN.username)[0] == 2  # type: ignore[index]
    # His own.
    page = browser.client.get("/account/assurance")
    start = browser.client.post("/account/assurance/usb", data={"csrf_token": csrf_of(text_of(page))})
    signed = plugin_sign(browser, location(start), AN_TOKEN)
    response = send(browser, signed)
    assert location(response) == "/account/assurance"
    page = browser.client.get(response.headers["Location"])
    assert "Đã nâng mức xác minh lên mức 3" in text_of(page) and "USB ký số" in text_of(page)
    assert person_of(app, AN.username)[:2] == (3, "usb")  # type: ignore[index]
    with app.app_context():
        event = db.session.execute(
            select(AuditEvent).where(AuditEvent.action == "assurance.raised")
        ).scalar_one()
        assert event.detail and event.detail["after"] == 3
    # Replayed: refused.
    assert alert(send(browser, signed)) == refusal("CHALLENGE")
    # The next sign-in's ID token carries LoA3.
    claims = claims_of(app.test_client(), sign_in_portal(fresh(app, outbox), AN)["id_token"])
    assert claims["acr"] == "LoA3"


def test_a_portal_demanding_level_3_lets_an_raise_his_level_and_continue(
    app: Any, browser: Browser, outbox: Outbox
) -> None:
    """DESIGN §4's offered step-up: An (LoA2, signed in at the portal) opens a portal that demands
    LoA3; the page offers the raise; he signs with his USB token on /account/assurance, continues,
    and the portal receives LoA3 in the same SSO session, without signing in again."""
    import html
    import re

    first, auth = browser.sign_in(AN.username, AN.password)
    portal_claims = verify_jwt(
        browser.client, exchange(browser.client, first["code"], auth).json["id_token"]
    )[1]
    assert portal_claims["acr"] == "LoA2"
    response, auth = browser.start(client_id="strict-portal", redirect_uri=CALLBACKS["strict-portal"])
    assert response.status_code == 403
    link = re.search(r'id="raise-level" href="([^"]+)"', text_of(response))
    assert link is not None
    page = open_account(browser, AN, html.unescape(link.group(1)))
    assert page.request.path == "/account/assurance"
    assert "Sau khi nâng mức xác minh, bạn có thể tiếp tục đăng nhập vào Cổng yêu cầu mức 3" in text_of(page)
    assert 'id="continue-sign-in"' not in text_of(page)  # not before the raise
    start = browser.client.post("/account/assurance/usb", data={"csrf_token": csrf_of(text_of(page))})
    response = send(browser, plugin_sign(browser, location(start), AN_TOKEN))
    page = browser.client.get(response.headers["Location"])
    assert "Đã nâng mức xác minh lên mức 3" in text_of(page)
    cont = re.search(r'id="continue-sign-in" href="([^"]+)"', text_of(page))
    assert cont is not None and "Tiếp tục đăng nhập vào Cổng yêu cầu mức 3" in text_of(page)
    response = browser.follow(browser.client.get(html.unescape(cont.group(1))))
    callback = query_of(response.headers["Location"])
    assert response.headers["Location"].startswith(CALLBACKS["strict-portal"] + "?") and "code" in callback
    assert callback["state"] == auth.params["state"]
    tokens = exchange(browser.client, callback["code"], auth, "strict-portal")
    claims = verify_jwt(browser.client, tokens.json["id_token"])[1]
    assert (
        claims["acr"] == "LoA3"
        and claims["sid"] == portal_claims["sid"]
        and claims["sub"] == portal_claims["sub"]
    )
    # The first portal, by SSO, now gets LoA3 too.
    again, auth = browser.sign_in(AN.username, AN.password)
    claims = verify_jwt(browser.client, exchange(browser.client, again["code"], auth).json["id_token"])[1]
    assert claims["acr"] == "LoA3"


def test_a_level_raised_in_another_browser_is_taken_by_a_new_sign_in(
    app: Any, browser: Browser, outbox: Outbox
) -> None:
    """This browser's session still has level 2 when An raised his level in another browser: the
    portal demanding LoA3 gets him a sign-in (which reads the new level), not the offer to raise."""
    browser.sign_in(AN.username, AN.password)
    other = fresh(app, outbox)
    page = open_account(other, AN, "/account/assurance")
    start = other.client.post("/account/assurance/usb", data={"csrf_token": csrf_of(text_of(page))})
    send(other, plugin_sign(other, location(start), AN_TOKEN))
    assert person_of(app, AN.username)[0] == 3  # type: ignore[index]
    response, auth = browser.start(client_id="strict-portal", redirect_uri=CALLBACKS["strict-portal"])
    assert response.status_code == 302 and "/login/" in response.headers["Location"], text_of(response)[:500]
    login = browser.follow(response).request.path
    response = browser.submit_password(login, AN.username, AN.password)
    response = browser.follow(browser.submit_otp(response.headers["Location"], outbox.last_code(AN.phone)))
    callback = query_of(response.headers["Location"])
    tokens = exchange(browser.client, callback["code"], auth, "strict-portal")
    assert verify_jwt(browser.client, tokens.json["id_token"])[1]["acr"] == "LoA3"


def test_raising_with_someone_elses_sim_is_refused(app: Any, browser: Browser) -> None:
    page = open_account(browser, AN, "/account/assurance")
    proofs = count(app, IdentityProof)
    response = browser.client.post(
        "/account/assurance/sim", data={"csrf_token": csrf_of(text_of(page)), "phone": TRANG.phone}
    )
    wait = location(response)
    assert "076****123" in text_of(browser.client.get(wait))
    assert browser.client.get(wait + "/status").json == {"state": "pending"}
    assert location(sim_answer(browser, TRANG.phone or "", TRANG.pin)) == "/sandbox/sim"
    response = post_page(browser, wait)
    assert response.status_code == 422
    assert "mang số định danh khác" in alert(response)
    assert count(app, IdentityProof) == proofs and person_of(app, AN.username)[0] == 2  # type: ignore[index]


def test_a_phone_without_a_signing_sim(app: Any, browser: Browser) -> None:
    response = post_page(browser, "/register/citizen/sim", phone="0912345678")
    assert response.status_code == 422
    assert alert(response) == refusal("SIM_NOT_ENROLLED")
    assert 'value="0912345678"' in text_of(response)  # what was typed is kept
