"""`make demo`: idp and the demo portal side by side, on SQLite and the embedded store.

Creates the database and keys on first run (`idp init --sandbox`), generates a fresh client
secret for the demo portal, starts idp on http://127.0.0.1:8000, the portal on
http://127.0.0.1:8001 and a partner application that asks for consent on http://127.0.0.1:8002,
and prints the sandbox citizens. SMS OTPs are printed on this console and appended to
instance/sms-outbox.jsonl. Ctrl-C stops them all.
"""

from __future__ import annotations

import json
import os
import secrets
import signal
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
# idp on DEMO_PORT (8000), the portal on the next port, the partner on the one after. Signing in
# works on the default ports (clients.yaml registers the portals' callbacks on 8001 and 8002);
# another DEMO_PORT serves the start-and-stop test (tests/system/test_demo.py).
PORT = int(os.environ.get("DEMO_PORT") or 8000)
IDP_URL = f"http://127.0.0.1:{PORT}"
PORTAL_URL = f"http://127.0.0.1:{PORT + 1}"
PARTNER_URL = f"http://127.0.0.1:{PORT + 2}"


def wait_for(url: str, seconds: float = 30) -> bool:
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        try:
            with urllib.request.urlopen(url, timeout=1) as response:  # noqa: S310 - loopback only
                if response.status == 200:
                    return True
        except OSError:
            time.sleep(0.3)
    return False


def print_registration(idp_url: str) -> None:
    """Registration ('Đăng ký' on the portal): who registers how, the sandbox signing devices and
    the PINs of the sandbox certificates (idp/verifiers/sandbox_data/registers.json)."""
    registers = json.loads(
        (ROOT / "idp" / "verifiers" / "sandbox_data" / "registers.json").read_text(encoding="utf-8")
    )
    print(" Register ('Đăng ký' on the portal) as a fictional newcomer of the sandbox registers:")
    for p in registers["people"]:
        if "registers" in p.get("scenario", ""):
            print(f"   {p['id_number']:<13} {p['full_name']:<16} {p['birth_date']}  {p['scenario']}")
    for e in registers.get("enterprises", []):
        if "registers" in e.get("scenario", ""):
            print(f"   MST {e['tax_code']:<9} {e['name']}  {e['scenario']}")
    print(
        f" Raise LoA2 -> LoA3: sign in as 046090001234, open {idp_url}/account/assurance, sign with the USB token"
    )
    print(
        f" Sandbox signing devices: SIM 'phone' {idp_url}/sandbox/sim   USB plugin {idp_url}/sandbox/usb-token"
    )
    print("   (the USB plugin opens from the registration page's button; the SIM page is a second tab)")
    holders = [
        (
            p["full_name"],
            f"CMND {p['legacy_id_number']}" if p["certificate"].get("names") == "cmnd" else p["id_number"],
            p["certificate"],
            p.get("phones", []),
        )
        for p in registers["people"]
        if p.get("certificate")
    ] + [
        (e["name"], f"MST {e['tax_code']}", e["certificate"], [e["phone"]] if e.get("phone") else [])
        for e in registers.get("enterprises", [])
        if e.get("certificate")
    ]
    for name, number, cert, phones in holders:
        device = "SIM " + phones[0] if cert["device"] == "sim" and phones else "USB token"
        print(f"   PIN {cert['pin']:<8} {device:<15} {name} ({number})")
    from idp.verifiers.sandbox_pki import REVOKED_PERSON as revoked

    print(
        f"   PIN {revoked['certificate']['pin']:<8} {'USB token':<15} {revoked['full_name']} "
        f"({revoked['id_number']}): revoked by the sandbox CA, refused"
    )


def main() -> int:
    os.chdir(ROOT)
    env = dict(os.environ)
    env.setdefault("IDP_ISSUER", IDP_URL)
    env.setdefault("IDP_DATABASE_URL", "sqlite:///instance/idp.sqlite3")
    env.setdefault("IDP_SMS_OUTBOX", str(ROOT / "instance" / "sms-outbox.jsonl"))
    env.setdefault("IDP_SMS_ECHO", "true")
    env["DEMO_PORTAL_CLIENT_SECRET"] = secrets.token_urlsafe(32)
    env["DEMO_PARTNER_CLIENT_SECRET"] = secrets.token_urlsafe(32)
    env["DEMO_IDP_ISSUER"] = env["IDP_ISSUER"]
    env["DEMO_PORTAL_URL"] = PORTAL_URL
    env.pop("IDP_REDIS_URL", None)  # the demo needs no services

    init = subprocess.run([sys.executable, "-m", "idp.cli", "init", "--sandbox"], env=env)
    if init.returncode != 0:
        return init.returncode
    processes: list[subprocess.Popen[bytes]] = []
    stopping = False

    def stop(*_: object) -> None:
        """One SIGTERM to each server's master (a graceful stop of its workers), once."""
        nonlocal stopping
        if stopping:
            return
        stopping = True
        for p in processes:
            if p.poll() is None:
                p.terminate()

    def interrupted(*_: object) -> None:
        raise KeyboardInterrupt

    signal.signal(signal.SIGTERM, interrupted)
    signal.signal(signal.SIGINT, interrupted)
    try:
        # One by one: a Ctrl-C between two starts still stops those already started.
        processes.append(
            subprocess.Popen(
                [
                    sys.executable,
                    "-m",
                    "idp.cli",
                    "serve",
                    "--host",
                    "127.0.0.1",
                    "--port",
                    str(PORT),
                    "--workers",
                    "1",
                ],
                env=env,
                start_new_session=True,
            )
        )
        processes.append(
            subprocess.Popen(
                [
                    sys.executable,
                    "-m",
                    "gunicorn",
                    "--workers",
                    "1",
                    "--threads",
                    "4",
                    "--bind",
                    f"127.0.0.1:{PORT + 1}",
                    "--access-logfile",
                    "-",
                    "--no-control-socket",
                    "demo.portal:create_app()",
                ],
                env=env,
                start_new_session=True,
            )
        )
        # The demo partner application (not a provincial portal: it asks for consent).
        processes.append(
            subprocess.Popen(
                [
                    sys.executable,
                    "-m",
                    "gunicorn",
                    "--workers",
                    "1",
                    "--threads",
                    "4",
                    "--bind",
                    f"127.0.0.1:{PORT + 2}",
                    "--access-logfile",
                    "-",
                    "--no-control-socket",
                    "demo.portal:create_app()",
                ],
                env=dict(
                    env,
                    DEMO_PORTAL_URL=PARTNER_URL,
                    DEMO_PORTAL_CLIENT_ID="demo-partner",
                    DEMO_PORTAL_CLIENT_SECRET=env["DEMO_PARTNER_CLIENT_SECRET"],
                    DEMO_PORTAL_NAME="Ứng dụng đối tác (demo)",
                    DEMO_PORTAL_COLOUR="#1e6b35",
                ),
                start_new_session=True,
            )
        )

        if not (wait_for(IDP_URL + "/health") and wait_for(PORTAL_URL + "/") and wait_for(PARTNER_URL + "/")):
            print("idp or the demo portal did not start; see the messages above", file=sys.stderr)
            return 1
        people = json.loads((ROOT / "idp" / "sandbox" / "accounts.json").read_text(encoding="utf-8"))
        print("\n" + "=" * 72)
        print(f" idp:          {IDP_URL}   (discovery: {IDP_URL}/.well-known/openid-configuration)")
        print(f" demo portal:  {PORTAL_URL}   <- open this and click 'Đăng nhập'")
        print(f" demo partner: {PARTNER_URL}   (not a provincial portal: it asks for your consent)")
        print(f" your account: {IDP_URL}/account   (sessions and devices, consents)")
        print(" Sign in with 'Tài khoản công dân' as one of these fictional citizens:")
        for p in people["citizens"] + people.get("legacy_citizens", []):
            number = p.get("id_number") or p.get("legacy_id_number")
            print(f"   {number:<13} {p['password']:<15} LoA{p['loa']}  {p['full_name']}")
        print(
            " or with 'Tài khoản tổ chức' as a fictional staff member (password, then SMS OTP or app code):"
        )
        for org in people.get("organizations", []):
            for staff in org["staff"]:
                second = f"app secret {staff['totp_secret']}" if staff.get("totp_secret") else "SMS OTP only"
                print(f"   {staff['username']:<13} {staff['password']:<15} {second}  ({staff['full_name']})")
        print_registration(IDP_URL)
        print(" The OTP is printed here as '[SMS to +84...]' and written to instance/sms-outbox.jsonl")
        print(" Ctrl-C stops all three servers.")
        print("=" * 72 + "\n", flush=True)
        while all(p.poll() is None for p in processes):
            time.sleep(0.5)
        print("a server of the demo stopped; stopping the others", file=sys.stderr)
        return 1
    except KeyboardInterrupt:
        return 0
    finally:
        # Further Ctrl-C while the servers stop changes nothing: they are stopping already.
        signal.signal(signal.SIGINT, signal.SIG_IGN)
        signal.signal(signal.SIGTERM, signal.SIG_IGN)
        stop()
        for p in processes:
            try:
                p.wait(timeout=15)
            except subprocess.TimeoutExpired:
                os.killpg(p.pid, signal.SIGKILL)  # its whole group: workers too
                p.wait()


if __name__ == "__main__":
    sys.exit(main())
