"""`make demo` (demo/run.py): Ctrl-C stops idp and both demo portals, every time, and exits 0.

A terminal sends Ctrl-C's SIGINT to its whole foreground process group. The launcher runs each
server in a process group of its own, so that only the launcher hears it and stops each server
with one signal; a worker that heard both the terminal and its master used to hang, keeping the
port, so that the next `make demo` could not start.
"""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

REPO = Path(__file__).resolve().parents[2]
STARTS = int(__import__("os").environ.get("DEMO_TEST_STARTS", "20"))


def free_port_block() -> int:
    """A base port with base, base+1 and base+2 free."""
    for _ in range(50):
        with socket.socket() as s:
            s.bind(("127.0.0.1", 0))
            base = s.getsockname()[1]
        if base + 2 < 65536 and all(_free(base + i) for i in range(3)):
            return base
    raise RuntimeError("no three consecutive free ports")


def _free(port: int) -> bool:
    """Nothing listens on the port (connections closing in TIME_WAIT do not count, as for a server)."""
    with socket.socket() as s:
        s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            s.bind(("127.0.0.1", port))
        except OSError:
            return False
    return True


def _up(url: str) -> bool:
    try:
        with urllib.request.urlopen(url, timeout=1) as r:  # noqa: S310 - loopback
            return r.status == 200
    except OSError:
        return False


def _processes_with(marker: bytes) -> list[int]:
    """Processes whose environment holds `marker` (the launcher's and every server's)."""
    found = []
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            try:
                environ = (entry / "environ").read_bytes()
            except OSError:
                continue
            if marker in environ.split(b"\0"):
                found.append(int(entry.name))
    return found


def test_ctrl_c_stops_everything_twenty_times_in_a_row(tmp_path: Path) -> None:
    base = free_port_block()
    env = {k: v for k, v in os.environ.items() if not k.startswith(("IDP_", "DEMO_"))}
    env.update(
        DEMO_PORT=str(base),
        IDP_DATABASE_URL=f"sqlite:///{tmp_path / 'idp.sqlite3'}",
        IDP_KEYS_DIR=str(tmp_path / "keys"),
        IDP_SMS_OUTBOX=str(tmp_path / "sms.jsonl"),
        IDP_ARGON2_MEMORY_KIB="1024",
        IDP_ARGON2_TIME_COST="1",
    )
    log = tmp_path / "demo.log"
    for attempt in range(STARTS):
        # Like a shell running `make demo` in a terminal: the launcher leads its own group, as
        # the terminal's foreground job does, and Ctrl-C goes to that whole group.
        with log.open("wb") as out:
            launcher = subprocess.Popen(
                [sys.executable, "demo/run.py"],
                cwd=REPO,
                env=env,
                stdout=out,
                stderr=subprocess.STDOUT,
                start_new_session=True,
            )
        try:
            deadline = time.monotonic() + 60
            urls = [f"http://127.0.0.1:{base + i}/" + ("health" if i == 0 else "") for i in range(3)]
            while not all(_up(u) for u in urls):
                assert launcher.poll() is None, log.read_text()[-3000:]
                assert time.monotonic() < deadline, f"start {attempt + 1}: the demo did not come up"
                time.sleep(0.2)
            os.killpg(launcher.pid, signal.SIGINT)
            code = launcher.wait(timeout=30)
        finally:
            if launcher.poll() is None:
                os.killpg(launcher.pid, signal.SIGKILL)
                launcher.wait()
        assert code == 0, (attempt + 1, log.read_text()[-3000:])
        # Every server is gone and each port is free for the next start.
        assert all(_free(base + i) for i in range(3)), f"start {attempt + 1}: a port is still taken"
        left = _processes_with(f"DEMO_PORT={base}".encode())
        assert not left, f"start {attempt + 1}: processes of the demo are left: {left}"
