"""Finding a dead PostgreSQL connection at checkout without a round trip.

A pooled connection dies when the server restarts, crashes or is shut down: the server's side of
the socket closes (after a FATAL message when it shuts down cleanly), so the client's socket turns
readable although idp sent nothing. At checkout, an idle connection that has anything to read is
therefore dead or in a state we do not use (idp never LISTENs); it is thrown away and SQLAlchemy
opens a fresh one (its documented pessimistic disconnect handling: a ``checkout`` listener raising
``DisconnectionError``). This finds what ``pool_pre_ping`` finds in the failures that happen here
— a restarted or stopped server, a proxy that drops its sessions — without its ``SELECT 1`` round
trip on every request. Whatever it misses (a connection that dies while in use) fails that one
request with the usual 503 / ``temporarily_unavailable`` and invalidates the pool.
"""

from __future__ import annotations

import select
from typing import Any

from sqlalchemy import event
from sqlalchemy.engine import Engine
from sqlalchemy.exc import DisconnectionError

_READABLE = select.POLLIN | select.POLLPRI | select.POLLERR | select.POLLHUP | select.POLLNVAL


def socket_says_dead(dbapi_connection: Any) -> bool:
    """Whether an idle connection has been closed or spoken to by the server since its last use."""
    if getattr(dbapi_connection, "closed", False) or getattr(dbapi_connection, "broken", False):
        return True
    try:
        fd = dbapi_connection.fileno()
    except Exception:  # noqa: BLE001 - a connection without a usable socket is dead
        return True
    poller = select.poll()
    poller.register(fd, _READABLE)
    return bool(poller.poll(0))


def install(engine: Engine) -> None:
    """Check each PostgreSQL connection's socket at checkout (SQLite has none to check)."""
    if engine.dialect.name != "postgresql":
        return

    @event.listens_for(engine, "checkout")
    def _check(dbapi_connection: Any, record: Any, proxy: Any) -> None:
        if socket_says_dead(dbapi_connection):
            raise DisconnectionError("the database server closed this connection")
