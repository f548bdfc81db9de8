"""Bounded requests: body size, body deadline and sign-in rate, enforced before the app reads.

``RequestLimits`` is a pure ASGI middleware, outermost in ``create_app``. For each HTTP request:

1. Headers larger than ``http.max_header_bytes`` are answered 431.
2. A request with a body to ``/api/v1`` from a caller that ``authenticated`` does not know is
   answered 401 before one byte of its body is read: FastAPI would otherwise read and parse
   the whole JSON body before the route's token check ran. Then a ``Content-Length`` above
   the limit (``http.max_body_bytes``; ``http.login_max_body_bytes`` for POST /login) is
   answered 413 before the app runs.
3. POST /login from an address (or naming an account) that has spent its failed attempts is
   answered 429 with ``Retry-After``; a sign-in that succeeds (a redirect) gives its attempt
   back (``service.runtime.rate_limit``).
4. While the app reads the body, the bytes are counted as they arrive (chunked bodies too):
   past the limit the middleware answers 413 at once, and a body not complete
   ``http.body_read_timeout_s`` after the request began 408, both with ``Connection: close``
   (uvicorn then drops the rest instead of reading it). The app is told the client left
   (``http.disconnect``) and whatever it answers is dropped: raising from ``receive`` would
   not do, FastAPI turns an error inside its body parsing into a 400.

Starlette's own ``RequestBodyLimitMiddleware`` checks ``Content-Length`` only when the app reads
and knows neither callers nor deadlines, hence this module. Nothing here blocks: uvicorn
buffers at most its high-water mark (64 KiB) of a body the app has not asked for.
"""

from __future__ import annotations

import asyncio
import json
import math
import time
from collections.abc import Callable
from urllib.parse import parse_qs

from starlette.datastructures import Headers
from starlette.requests import ClientDisconnect, Request
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from service.api.principal import principal_of
from service.runtime.http_settings import HttpSettings
from service.runtime.rate_limit import TokenBuckets

API_PREFIX = "/api/v1"
LOGIN_PATH = "/login"
# The sign-in form field that names an account, when a sign-in method has one.
ACCOUNT_FIELD = "username"


def known_caller(scope: Scope) -> bool:
    """Whether the request's headers name a principal (the routes' own check, minus the body).

    ``scope["app"]`` is the application (Starlette sets it before any middleware runs).
    """
    return principal_of(Request(scope)) is not None


class RequestLimits:
    def __init__(
        self,
        app: ASGIApp,
        *,
        settings: HttpSettings,
        authenticated: Callable[[Scope], bool],
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.app = app
        self.settings = settings
        self.authenticated = authenticated
        self.clock = clock
        self.by_address = TokenBuckets(settings.login_burst_per_address, settings.login_refill_s)
        self.by_account = TokenBuckets(settings.login_burst_per_account, settings.login_refill_s)

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        # uvicorn's h11 limit holds only while headers are incomplete: one large packet
        # with all of them passes it, so they are measured here too.
        if sum(len(k) + len(v) + 4 for k, v in scope["headers"]) > self.settings.max_header_bytes:
            await _refuse(send, 431, "request headers too large")
            return
        login = scope["method"] == "POST" and scope["path"] == LOGIN_PATH
        limit = self.settings.login_max_body_bytes if login else self.settings.max_body_bytes
        headers = Headers(scope=scope)
        length = _content_length(headers)
        has_body = bool(length) or "transfer-encoding" in headers
        # Who is asking first, then how much: an unknown caller learns nothing about limits.
        if has_body and _under(scope["path"], API_PREFIX) and not self.authenticated(scope):
            await _refuse(send, 401, "a valid bearer token is required", bearer=True)
            return
        if length is not None and length < 0:
            await _refuse(send, 400, "invalid Content-Length")
            return
        if length is not None and length > limit:
            await _refuse(send, 413, TOO_LARGE)
            return
        deadline = self.clock() + self.settings.body_read_timeout_s
        body = _BoundedBody(receive, send, limit, deadline, self.clock)
        if login:
            await self._login(scope, body, send)
            return
        await self._serve(scope, body, send)

    async def _serve(
        self,
        scope: Scope,
        body: _BoundedBody,
        send: Send,
        on_status: Callable[[int], None] | None = None,
    ) -> None:
        async def send_limited(message: Message) -> None:
            if body.answered:
                return  # the middleware has answered for the app (413, 408)
            if message["type"] == "http.response.start":
                body.response_started = True
                if on_status is not None:
                    on_status(message["status"])
                if body.cut:
                    message = {**message, "headers": [*message.get("headers", []), _CLOSE]}
            await send(message)

        try:
            await self.app(scope, body.receive, send_limited)
        except Exception as exc:
            if body.cut and _only_disconnects(exc):
                return  # the app read on after the cut-off: the "client" it lost is us
            raise

    async def _login(self, scope: Scope, body: _BoundedBody, send: Send) -> None:
        """Rate-limit a sign-in: by address before reading, by account after (the form is small)."""
        now = self.clock()
        address = _address(scope)
        if not self.by_address.take(address, now):
            await _too_many(send, self.by_address.wait_s(address, now))
            return
        form = await body.read_all()
        if body.answered or body.cut:
            return
        account = _account(form)
        if account is not None and not self.by_account.take(account, now):
            self.by_address.refund(address, now)  # this attempt never reached a check
            await _too_many(send, self.by_account.wait_s(account, now))
            return

        def settle(status: int) -> None:
            if status < 400:  # signed in (a redirect): only failures count
                self.by_address.refund(address, self.clock())
                if account is not None:
                    self.by_account.refund(account, self.clock())

        await self._serve(scope, body, send, on_status=settle)


class _BoundedBody:
    """The request's ``receive``, counting body bytes against ``limit`` and a deadline.

    Past either, it answers on ``send`` itself (unless the app's response has begun) and
    from then on tells the app the client has gone. Once the body is complete, later calls
    (the app waiting for a disconnect) pass through untouched. ``read_all`` reads the whole
    body up front and replays it to the app.
    """

    def __init__(
        self,
        receive: Receive,
        send: Send,
        limit: int,
        deadline: float,
        clock: Callable[[], float],
    ) -> None:
        self._receive = receive
        self._send = send
        self.clock = clock
        self.limit = limit
        self.deadline = deadline
        self.received = 0
        self.complete = False
        self.cut = False
        self.response_started = False
        self.answered = False
        self._replay: list[Message] = []

    async def receive(self) -> Message:
        if self._replay:
            return self._replay.pop(0)
        if self.cut:
            return _GONE
        if self.complete:
            return await self._receive()
        remaining = self.deadline - self.clock()
        try:
            if remaining <= 0:
                raise TimeoutError
            async with asyncio.timeout(remaining):
                message = await self._receive()
        except TimeoutError:
            return await self._cut_off(408, "request body not received in time")
        if message["type"] == "http.request":
            self.received += len(message.get("body", b""))
            if self.received > self.limit:
                return await self._cut_off(413, TOO_LARGE)
            self.complete = not message.get("more_body", False)
        else:
            self.complete = True
        return message

    async def _cut_off(self, status: int, detail: str) -> Message:
        self.cut = True
        if not self.response_started:
            self.answered = True
            await _refuse(self._send, status, detail)
        return _GONE

    async def read_all(self) -> bytes:
        chunks = []
        while not self.complete:
            message = await self.receive()
            chunks.append(message.get("body", b""))
            if message["type"] != "http.request":
                break
        data = b"".join(chunks)
        self._replay.append({"type": "http.request", "body": data, "more_body": False})
        return data


_CLOSE = (b"connection", b"close")
_GONE: Message = {"type": "http.disconnect"}
TOO_LARGE = "request body too large"


def _only_disconnects(exc: BaseException) -> bool:
    if isinstance(exc, BaseExceptionGroup):
        return all(_only_disconnects(inner) for inner in exc.exceptions)
    return isinstance(exc, ClientDisconnect)


def _under(path: str, prefix: str) -> bool:
    return path == prefix or path.startswith(prefix + "/")


def _content_length(headers: Headers) -> int | None:
    value = headers.get("content-length")
    if value is None:
        return None
    value = value.strip()
    return int(value) if value.isdigit() and value.isascii() else -1


def _address(scope: Scope) -> str:
    client = scope.get("client")
    return str(client[0]) if client else "unknown"


def _account(form: bytes) -> str | None:
    try:
        fields = parse_qs(form.decode("utf-8"), max_num_fields=20)
    except (UnicodeDecodeError, ValueError):
        return None
    names = fields.get(ACCOUNT_FIELD) or [""]
    name = names[0].strip().casefold()
    return name or None


async def _too_many(send: Send, wait_s: float) -> None:
    retry = str(max(1, math.ceil(wait_s)))
    await _refuse(send, 429, "too many failed sign-ins; try again later", retry_after=retry)


async def _refuse(
    send: Send, status: int, detail: str, *, bearer: bool = False, retry_after: str = ""
) -> None:
    """A JSON error response that also closes the connection: the unread body is dropped."""
    payload = json.dumps({"detail": detail}).encode()
    headers = [
        (b"content-type", b"application/json"),
        (b"content-length", str(len(payload)).encode()),
        (b"cache-control", b"no-store"),
        _CLOSE,
    ]
    if bearer:
        headers.append((b"www-authenticate", b"Bearer"))
    if retry_after:
        headers.append((b"retry-after", retry_after.encode()))
    await send({"type": "http.response.start", "status": status, "headers": headers})
    await send({"type": "http.response.body", "body": payload})
