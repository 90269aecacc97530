"""A relying party's back-channel logout endpoint, recording the logout tokens it receives."""

from __future__ import annotations

import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from urllib.parse import parse_qs


class BackchannelReceiver:
    def __init__(self) -> None:
        self.received: list[tuple[str, str]] = []  # (path, logout_token)
        self.status = 200
        receiver = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:  # noqa: N802
                length = int(self.headers.get("Content-Length", 0))
                body = parse_qs(self.rfile.read(length).decode())
                receiver.received.append((self.path, body.get("logout_token", [""])[0]))
                self.send_response(receiver.status)
                self.send_header("Cache-Control", "no-store")
                self.end_headers()

            def log_message(self, *args: object) -> None:
                return None

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.base = f"http://127.0.0.1:{self.server.server_address[1]}"
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)
        self.thread.start()

    def tokens_for(self, path: str) -> list[str]:
        return [token for p, token in self.received if p == path]

    def close(self) -> None:
        self.server.shutdown()
        self.server.server_close()
