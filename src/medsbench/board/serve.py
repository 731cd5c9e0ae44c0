"""``medsbench board serve``: a local look at the built site (127.0.0.1 only, read-only files)."""

from __future__ import annotations

import functools
import http.server
import os
from pathlib import Path

from medsbench.errors import MedsbenchError


class _QuietHandler(http.server.SimpleHTTPRequestHandler):
    def log_message(self, format: str, *args: object) -> None:  # noqa: A002 - stdlib signature
        pass


def make_server(site: str | os.PathLike, port: int = 8000, host: str = "127.0.0.1") -> http.server.ThreadingHTTPServer:
    """A server for ``site`` (not started). ``port=0`` picks a free port (``server.server_address``)."""
    site = Path(site)
    if not (site / "index.html").is_file():
        raise MedsbenchError("no built site here (run: medsbench board build)", where=str(site))
    handler = functools.partial(_QuietHandler, directory=str(site.resolve()))
    try:
        return http.server.ThreadingHTTPServer((host, port), handler)
    except OSError as exc:
        raise MedsbenchError(f"cannot listen on {host}:{port}: {exc.strerror}") from None
