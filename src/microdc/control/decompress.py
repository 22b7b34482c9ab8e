"""ASGI middleware that decodes compressed request bodies (``Content-Encoding: gzip`` or ``zstd``).

The control plane does not decode compressed requests yet; the agent's uplink falls back to identity
bodies when a server refuses them (see `microdc.agent.uplink`). Until ``control/app.py`` mounts this (or
its own equivalent), `microdc demo-fleet` and the agent's tests wrap the control-plane app with it:

    app = DecompressMiddleware(create_app(settings), max_bytes=settings.max_body_bytes)

The decoded size is capped at ``max_bytes`` (413 beyond: no decompression bombs), and the decoded body
is passed on with ``Content-Length`` rewritten and ``Content-Encoding`` removed, so the app's own
body-size limit applies to the decoded bytes. An undecodable body is a 400 problem document.
"""

from __future__ import annotations

import gzip
import json
import zlib
from typing import Any

from starlette.types import ASGIApp, Message, Receive, Scope, Send

CODINGS = ("gzip", "zstd")


def _decode(coding: str, data: bytes, max_bytes: int) -> bytes:
    if coding == "gzip":
        d = zlib.decompressobj(16 + zlib.MAX_WBITS)
        out = d.decompress(data, max_bytes + 1)
        if len(out) > max_bytes:
            raise OverflowError
        if not d.eof:
            raise ValueError("truncated gzip body")
        return out
    import zstandard

    with zstandard.ZstdDecompressor().stream_reader(data) as reader:
        out = reader.read(max_bytes + 1)
    if len(out) > max_bytes:
        raise OverflowError
    return out


class DecompressMiddleware:
    def __init__(
        self, app: ASGIApp, max_bytes: int = 2 * 1024 * 1024, max_compressed_bytes: int | None = None
    ):
        self.app = app
        self.max_bytes = max_bytes
        self.max_compressed = max_compressed_bytes or max_bytes

    def __getattr__(self, name: str) -> Any:  # expose the wrapped app's attributes (state, routes…)
        return getattr(self.app, name)

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        headers = list(scope.get("headers", []))
        coding = next((v.decode().strip().lower() for k, v in headers if k == b"content-encoding"), None)
        if coding is None or coding == "identity":
            await self.app(scope, receive, send)
            return
        if coding not in CODINGS:
            await _problem(send, 415, f"unsupported Content-Encoding {coding!r}; use gzip or zstd")
            return
        parts: list[bytes] = []
        size = 0
        while True:
            msg = await receive()
            if msg["type"] != "http.request":
                return
            parts.append(msg.get("body", b""))
            size += len(parts[-1])
            if size > self.max_compressed:
                await _problem(send, 413, f"compressed body exceeds {self.max_compressed} bytes")
                return
            if not msg.get("more_body", False):
                break
        try:
            body = _decode(coding, b"".join(parts), self.max_bytes)
        except OverflowError:
            await _problem(send, 413, f"decoded body exceeds {self.max_bytes} bytes")
            return
        except (OSError, ValueError, EOFError, zlib.error, gzip.BadGzipFile, ImportError) as e:
            await _problem(send, 400, f"cannot decode {coding} body: {type(e).__name__}")
            return
        except Exception as e:  # zstandard.ZstdError
            await _problem(send, 400, f"cannot decode {coding} body: {type(e).__name__}")
            return
        new_headers = [(k, v) for k, v in headers if k not in (b"content-encoding", b"content-length")]
        new_headers.append((b"content-length", str(len(body)).encode()))
        sent = False

        async def replay() -> Message:
            nonlocal sent
            if not sent:
                sent = True
                return {"type": "http.request", "body": body, "more_body": False}
            return await receive()

        await self.app({**scope, "headers": new_headers}, replay, send)


async def _problem(send: Send, status: int, detail: str) -> None:
    titles = {400: "Bad Request", 413: "Payload Too Large", 415: "Unsupported Media Type"}
    body = json.dumps(
        {"type": "about:blank", "title": titles.get(status, "Error"), "status": status, "detail": detail}
    ).encode()
    await send(
        {
            "type": "http.response.start",
            "status": status,
            "headers": [
                (b"content-type", b"application/problem+json"),
                (b"content-length", str(len(body)).encode()),
            ],
        }
    )
    await send({"type": "http.response.body", "body": body})
