"""`idp serve` with cProfile around every request the gunicorn worker handles (bench --profile).

Only ``bench/run.py --profile`` starts this; the measured runs use the plain ``idp serve``.
It changes nothing in idp: before the command line runs it

- wraps gunicorn's ``ThreadWorker.handle`` (HTTP parsing, the WSGI call, writing the response,
  the access log) in a per-thread ``cProfile.Profile`` whose clock is the thread's CPU time, so
  the shares it reports are shares of CPU, not of waiting for PostgreSQL or Redis;
- wraps the Flask application built by ``idp.create_app`` in a tiny middleware answering
  ``GET /__bench__/profile?action=reset`` and ``?action=dump&phase=NAME`` from loopback only,
  which bench/run.py calls between phases (the dump is written to $BENCH_PROFILE_DIR/NAME.pstats).

    python bench/profiled_serve.py serve --host 127.0.0.1 --port P --workers 1 --threads T
"""

from __future__ import annotations

import cProfile
import os
import pstats
import sys
import threading
import time
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs

OUT = Path(os.environ.get("BENCH_PROFILE_DIR", "."))
_lock = threading.Lock()
_profiles: list[cProfile.Profile] = []
_generation = 0
_local = threading.local()


def _profile() -> cProfile.Profile:
    if getattr(_local, "generation", None) != _generation:
        _local.profile = cProfile.Profile(time.thread_time)
        _local.generation = _generation
        with _lock:
            _profiles.append(_local.profile)
    return _local.profile


def _reset() -> None:
    global _generation
    with _lock:
        _profiles.clear()
        _generation += 1


def _dump(phase: str) -> int:
    """Merge every thread's profile of the phase into one .pstats file; start afresh."""
    current = getattr(_local, "profile", None)
    if current is not None:
        current.disable()  # this control request runs inside a profiled handle()
    with _lock:
        profiles = list(_profiles)
    stats: pstats.Stats | None = None
    for prof in profiles:
        try:
            if stats is None:
                stats = pstats.Stats(prof)
            else:
                stats.add(prof)
        except TypeError:  # a thread that handled nothing in this phase
            continue
    if stats is not None:
        OUT.mkdir(parents=True, exist_ok=True)
        stats.dump_stats(str(OUT / f"{phase}.pstats"))
    _reset()
    return len(profiles)


class _Control:
    def __init__(self, app: Any) -> None:
        self.app = app

    def __call__(self, environ: dict[str, Any], start_response: Any) -> Any:
        if environ.get("PATH_INFO") == "/__bench__/profile" and environ.get("REMOTE_ADDR") == "127.0.0.1":
            query = parse_qs(environ.get("QUERY_STRING", ""))
            action = query.get("action", [""])[0]
            if action == "dump":
                phase = "".join(c for c in query.get("phase", ["phase"])[0] if c.isalnum() or c in "-_")
                body = f"dumped {_dump(phase or 'phase')} thread profiles\n".encode()
            else:
                _reset()
                body = b"reset\n"
            start_response("200 OK", [("Content-Type", "text/plain"), ("Content-Length", str(len(body)))])
            return [body]
        return self.app(environ, start_response)


def _patch() -> None:
    from gunicorn.workers import gthread

    import idp

    original_handle = gthread.ThreadWorker.handle

    def handle(self: Any, conn: Any) -> Any:
        prof = _profile()
        prof.enable()
        try:
            return original_handle(self, conn)
        finally:
            prof.disable()

    gthread.ThreadWorker.handle = handle

    original_create_app = idp.create_app

    def create_app(*args: Any, **kwargs: Any) -> Any:
        app = original_create_app(*args, **kwargs)
        app.wsgi_app = _Control(app.wsgi_app)  # type: ignore[method-assign]
        return app

    idp.create_app = create_app


if __name__ == "__main__":
    _patch()
    from idp.cli import main

    main(args=sys.argv[1:], prog_name="idp")
