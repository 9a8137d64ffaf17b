"""A loopback HTTP server for download tests: serves bytes from memory, honours Range, and misbehaves on
request (404, a stall before the answer, corrupted bytes, a connection cut after N bytes). It counts
the body bytes it sends per file, so a test can prove that a resumed download did not start over."""

from __future__ import annotations

import threading
import time
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer


@dataclass
class Behaviour:
    files: dict[str, bytes] = field(default_factory=dict)
    missing: set[str] = field(default_factory=set)  # answer 404
    corrupt: set[str] = field(default_factory=set)  # flip one byte of the body
    stall: dict[str, float] = field(default_factory=dict)  # sleep this long before answering
    cut: dict[str, int] = field(default_factory=dict)  # send this many body bytes, then drop (once)
    ranges: bool = True  # honour Range (False: always the whole file, status 200)
    served: dict[str, int] = field(default_factory=dict)  # body bytes sent per file
    requests: list[tuple[str, str | None]] = field(default_factory=list)  # (file, Range header)


class _Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"

    def do_GET(self) -> None:  # noqa: N802 (http.server's name)
        b: Behaviour = self.server.behaviour  # type: ignore[attr-defined]
        name = self.path.lstrip("/").split("?")[0]
        rng = self.headers.get("Range")
        b.requests.append((name, rng))
        if name in b.stall:
            time.sleep(b.stall[name])
        if name in b.missing or name not in b.files:
            return self._answer(404, b"not here", {})
        data = b.files[name]
        if name in b.corrupt:
            data = data[:-1] + bytes([data[-1] ^ 0xFF])
        start, code, headers = 0, 200, {"Accept-Ranges": "bytes"}
        if rng and b.ranges:
            start = int(rng.split("=")[1].split("-")[0])
            if start >= len(data):
                return self._answer(416, b"", {"Content-Range": f"bytes */{len(data)}"})
            code, headers["Content-Range"] = 206, f"bytes {start}-{len(data) - 1}/{len(data)}"
        body = data[start:]
        if name in b.cut:  # promise the whole body, send part of it, drop the connection
            n = b.cut.pop(name)
            self._answer(code, body[:n], headers, length=len(body))
            b.served[name] = b.served.get(name, 0) + n
            self.close_connection = True
            return
        self._answer(code, body, headers)
        b.served[name] = b.served.get(name, 0) + len(body)

    def _answer(self, code: int, body: bytes, headers: dict[str, str], length: int | None = None) -> None:
        self.send_response(code)
        for k, v in headers.items():
            self.send_header(k, v)
        self.send_header("Content-Length", str(len(body) if length is None else length))
        self.end_headers()
        self.wfile.write(body)
        self.wfile.flush()

    def log_message(self, format: str, *args: object) -> None:  # quiet
        pass


class _Server(ThreadingHTTPServer):
    daemon_threads = True  # a stalled handler never blocks the shutdown

    def handle_error(self, request: object, client_address: object) -> None:
        import sys

        if not isinstance(sys.exc_info()[1], (BrokenPipeError, ConnectionResetError)):  # a client that hung up
            super().handle_error(request, client_address)


class LoopbackServer:
    """``with LoopbackServer() as srv: srv.behaviour.files["a.h5"] = b"..."; url = srv.url + "/a.h5"``."""

    def __init__(self) -> None:
        self.behaviour = Behaviour()
        self._server = _Server(("127.0.0.1", 0), _Handler)
        self._server.behaviour = self.behaviour  # type: ignore[attr-defined]
        self.url = f"http://127.0.0.1:{self._server.server_address[1]}"
        self._thread = threading.Thread(target=self._server.serve_forever, kwargs={"poll_interval": 0.02},
                                        daemon=True)

    def __enter__(self) -> "LoopbackServer":
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._server.shutdown()
        self._server.server_close()
