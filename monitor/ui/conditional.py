"""ETags on JSON answers, so a page that polls pays only for what changed.

Why: the dashboard re-reads half a dozen routes every few seconds, and most of
the time nothing changed. With an ETag and ``Cache-Control: no-cache`` the
browser revalidates each read with ``If-None-Match`` and an unchanged answer
comes back as a bodiless 304, while a client that sends no ``If-None-Match``
sees exactly what it saw before. Only successful JSON answers to GET are
tagged; everything else passes through untouched.
"""

from __future__ import annotations

import hashlib

from starlette.types import ASGIApp, Message, Receive, Scope, Send


def _header(headers: list[tuple[bytes, bytes]], name: bytes) -> bytes | None:
    return next((value for key, value in headers if key.lower() == name), None)


class ConditionalGetMiddleware:
    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http" or scope["method"] != "GET":
            await self.app(scope, receive, send)
            return
        presented = _header(scope.get("headers", []), b"if-none-match")
        start: Message | None = None
        chunks: list[bytes] = []
        passthrough = False

        async def buffered_send(message: Message) -> None:
            nonlocal start, passthrough
            if passthrough:
                await send(message)
                return
            if message["type"] == "http.response.start":
                content_type = _header(list(message.get("headers", [])), b"content-type") or b""
                if message["status"] != 200 or not content_type.startswith(b"application/json"):
                    passthrough = True
                    await send(message)
                else:
                    start = message
                return
            chunks.append(message.get("body", b""))
            if message.get("more_body", False):
                return
            assert start is not None
            body = b"".join(chunks)
            tag = b'W/"' + hashlib.blake2b(body, digest_size=12).hexdigest().encode() + b'"'
            headers = [(k, v) for k, v in start.get("headers", []) if k.lower() not in (b"etag", b"cache-control")]
            headers += [(b"etag", tag), (b"cache-control", b"no-cache")]
            if presented is not None and tag in [t.strip() for t in presented.split(b",")]:
                kept = [(k, v) for k, v in headers if k.lower() not in (b"content-length", b"content-type")]
                await send({"type": "http.response.start", "status": 304, "headers": kept})
                await send({"type": "http.response.body", "body": b""})
                return
            await send({**start, "headers": headers})
            await send({"type": "http.response.body", "body": body})

        await self.app(scope, receive, buffered_send)
