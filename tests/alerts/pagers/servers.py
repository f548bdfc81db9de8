"""Real local servers for the transport tests, all on 127.0.0.1 with a kernel-chosen port.

- ``HttpServer``: a threaded stdlib HTTP server; a ``responder`` decides each reply. It records
  every request (method, path, headers, body), so a test can also assert what never arrived.
- ``WebhookReceiver``: a responder that verifies the HMAC signature and records idempotency
  keys, like a careful receiver would.
- ``WctpGateway``: a responder that speaks enough WCTP: success, client success, failure codes,
  HTTP errors, DOCTYPE-carrying replies, garbage, or hanging past the client's timeout.
- ``SmtpServer``: aiosmtpd's threaded ``Controller`` bound to port 0, with a handler that
  captures messages or answers RCPT / DATA with a chosen reply.
- ``silent_tcp_port`` (accepts, never speaks) and ``refused_port`` (bound, not listening).
"""

from __future__ import annotations

import asyncio
import hmac
import socket
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from email import message_from_bytes
from email.message import EmailMessage
from email.policy import default as default_policy
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

from aiosmtpd.controller import Controller
from defusedxml import ElementTree as SafeET

HANG_LIMIT_S = 5.0  # a hanging handler gives up after this, or when the server stops


@dataclass(frozen=True)
class Request:
    method: str
    path: str
    headers: dict[str, str]  # lower-cased names
    body: bytes


@dataclass(frozen=True)
class Reply:
    status: int = 200
    body: bytes = b""
    content_type: str = "text/plain"
    hang: bool = False  # wait (until the server stops) instead of answering


Responder = Callable[[Request], Reply]


class HttpServer:
    """Threaded HTTP server; use as a context manager. ``url`` is its base URL."""

    def __init__(self, responder: Responder | None = None, port: int = 0) -> None:
        self.responder: Responder = responder or (lambda _request: Reply())
        self.requests: list[Request] = []
        self._release = threading.Event()
        outer = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def _handle(self) -> None:
                length = int(self.headers.get("Content-Length") or 0)
                request = Request(
                    method=self.command,
                    path=self.path,
                    headers={k.lower(): v for k, v in self.headers.items()},
                    body=self.rfile.read(length),
                )
                outer.requests.append(request)
                reply = outer.responder(request)
                if reply.hang:
                    outer._release.wait(HANG_LIMIT_S)
                    self.close_connection = True
                    return
                self.send_response(reply.status)
                self.send_header("Content-Type", reply.content_type)
                self.send_header("Content-Length", str(len(reply.body)))
                self.end_headers()
                self.wfile.write(reply.body)

            do_GET = do_POST = _handle

            def log_message(self, format: str, *args: Any) -> None:
                pass

        class Server(ThreadingHTTPServer):
            def handle_error(self, request: Any, client_address: Any) -> None:
                pass  # a client that timed out and left: expected in these tests

        Server.allow_reuse_address = True
        self._server = Server(("127.0.0.1", port), Handler)
        # A short poll interval: shutdown() waits up to one interval, once per test.
        self._thread = threading.Thread(
            target=self._server.serve_forever, kwargs={"poll_interval": 0.02}, daemon=True
        )

    @property
    def url(self) -> str:
        host, port = self._server.server_address[:2]
        return f"http://{host!s}:{port}"

    def __enter__(self) -> HttpServer:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._release.set()
        self._server.shutdown()
        self._server.server_close()
        self._thread.join(timeout=5)


@dataclass
class WebhookReceiver:
    """Verifies ``X-LabSentinel-Signature`` and answers ``status`` (401 when it fails)."""

    secret: str | None
    status: int = 200
    hang: bool = False
    max_age_s: float = 300.0
    idempotency_keys: list[str] = field(default_factory=list)
    verified: list[bool] = field(default_factory=list)

    def __call__(self, request: Request) -> Reply:
        if self.hang:
            return Reply(hang=True)
        self.idempotency_keys.append(request.headers.get("idempotency-key", ""))
        ok = self.secret is None or self.verify(request)
        self.verified.append(ok)
        return Reply(status=self.status if ok else 401)

    def verify(self, request: Request) -> bool:
        assert self.secret is not None
        timestamp = request.headers.get("x-labsentinel-timestamp", "")
        signature = request.headers.get("x-labsentinel-signature", "")
        if not timestamp.isdigit() or abs(time.time() - int(timestamp)) > self.max_age_s:
            return False
        mac = hmac.new(self.secret.encode(), timestamp.encode() + b"." + request.body, "sha256")
        return hmac.compare_digest(signature, "sha256=" + mac.hexdigest())


WCTP_HEAD = '<?xml version="1.0" encoding="UTF-8"?>\n'
WCTP_DOCTYPE = '<!DOCTYPE wctp-Operation SYSTEM "{dtd}">\n'


def wctp_reply(inner: str, *, doctype: str = "") -> bytes:
    return (
        WCTP_HEAD
        + doctype
        + f'<wctp-Operation wctpVersion="wctp-dtd-v1r3">{inner}</wctp-Operation>'
    ).encode()


def wctp_success() -> bytes:
    return wctp_reply(
        '<wctp-Confirmation><wctp-Success successCode="200" successText="Accepted"/>'
        "</wctp-Confirmation>"
    )


def wctp_failure(code: str, text: str = "Rejected") -> bytes:
    return wctp_reply(
        f'<wctp-Confirmation><wctp-Failure errorCode="{code}" errorText="{text}"/>'
        "</wctp-Confirmation>"
    )


def wctp_client_success() -> bytes:
    return wctp_reply(
        '<wctp-SubmitClientResponse><wctp-ClientSuccess successCode="200" '
        'trackingNumber="T-1"/></wctp-SubmitClientResponse>'
    )


@dataclass
class WctpGateway:
    """Answers every POST with ``reply`` (a WCTP success by default) and parses each request."""

    reply: Reply = field(
        default_factory=lambda: Reply(body=wctp_success(), content_type="text/xml")
    )
    submitted: list[dict[str, str]] = field(default_factory=list)

    def __call__(self, request: Request) -> Reply:
        if request.method == "POST":
            self.submitted.append(parse_submit_request(request.body))
        return self.reply

    def answer(self, body: bytes, status: int = 200) -> None:
        self.reply = Reply(status=status, body=body, content_type="text/xml")


def parse_submit_request(body: bytes) -> dict[str, str]:
    """The fields of a wctp-SubmitRequest, flattened (parsed safely, as a gateway should)."""
    root = SafeET.fromstring(body)
    header = root.find("wctp-SubmitRequest/wctp-SubmitHeader")
    assert header is not None
    originator = header.find("wctp-Originator")
    control = header.find("wctp-MessageControl")
    recipient = header.find("wctp-Recipient")
    text = root.find("wctp-SubmitRequest/wctp-Payload/wctp-Alphanumeric")
    assert originator is not None and control is not None
    assert recipient is not None and text is not None
    return {
        "wctpVersion": root.get("wctpVersion", ""),
        "submitTimestamp": header.get("submitTimestamp", ""),
        **{k: v for k, v in originator.attrib.items()},
        **{k: v for k, v in control.attrib.items()},
        "recipientID": recipient.get("recipientID", ""),
        "text": text.text or "",
    }


class SmtpHandler:
    """aiosmtpd handler: captures messages; ``rcpt_reply`` / ``data_reply`` force an answer."""

    def __init__(self) -> None:
        self.rcpt_reply: str | None = None
        self.data_reply: str | None = None
        self.messages: list[tuple[list[str], EmailMessage]] = []

    async def handle_RCPT(
        self, server: Any, session: Any, envelope: Any, address: str, rcpt_options: Any
    ) -> str:
        if self.rcpt_reply:
            return self.rcpt_reply
        envelope.rcpt_tos.append(address)
        return "250 OK"

    async def handle_DATA(self, server: Any, session: Any, envelope: Any) -> str:
        if self.data_reply:
            return self.data_reply
        message = message_from_bytes(envelope.original_content, policy=default_policy)
        assert isinstance(message, EmailMessage)
        self.messages.append((list(envelope.rcpt_tos), message))
        return "250 Message accepted"


class _PortZeroController(Controller):
    """aiosmtpd's Controller pings ``self.port`` once it is up; with port 0 that must be the
    port the kernel chose, read from the listening socket."""

    def _trigger_server(self) -> None:
        assert isinstance(self.server, asyncio.Server)
        self.port = self.server.sockets[0].getsockname()[1]
        super()._trigger_server()


class SmtpServer:
    def __init__(self) -> None:
        self.handler = SmtpHandler()
        self._controller = _PortZeroController(self.handler, hostname="127.0.0.1", port=0)

    @property
    def host(self) -> str:
        return "127.0.0.1"

    @property
    def port(self) -> int:
        return int(self._controller.port)

    def __enter__(self) -> SmtpServer:
        self._controller.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._controller.stop()


@contextmanager
def silent_tcp_port() -> Iterator[int]:
    """A port whose listener completes the TCP handshake (kernel backlog) but never speaks."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        sock.listen(8)
        yield sock.getsockname()[1]


@contextmanager
def refused_port() -> Iterator[int]:
    """A port bound but not listening: connecting to it is refused, and no other process can
    take it while the test runs."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        yield sock.getsockname()[1]
