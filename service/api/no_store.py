"""``Cache-Control: no-store`` on every response but the static assets.

The API's JSON and the web pages (worklist, timeline, ack pages) carry patient identifiers;
no browser, proxy or shared cache may keep a copy (OWASP Session Management Cheat Sheet, "Web
Content Caching"; RFC 9111 §5.2.2.5). A response that sets its own Cache-Control keeps it.
"""

from __future__ import annotations

from starlette.types import ASGIApp, Message, Receive, Scope, Send

STATIC_PREFIX = "/static/"
_NO_STORE = (b"cache-control", b"no-store")


class NoStore:
    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http" or scope["path"].startswith(STATIC_PREFIX):
            await self.app(scope, receive, send)
            return

        async def send_no_store(message: Message) -> None:
            if message["type"] == "http.response.start":
                headers = list(message.get("headers", []))
                if not any(name.lower() == b"cache-control" for name, _ in headers):
                    message = {**message, "headers": [*headers, _NO_STORE]}
            await send(message)

        await self.app(scope, receive, send_no_store)
