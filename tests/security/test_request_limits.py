"""Bounded requests: the attacks of the finding, against the middleware and the real server.

An unauthenticated 100 MB body, a 300 MB body with a valid token, a body that never arrives,
headers that never end, and a sign-in guessed over and over. Bodies are generated on the fly
and counted as they are pulled, so "not read" is measured, not assumed.
"""

from __future__ import annotations

import dataclasses
import socket
import threading
import time
from collections.abc import AsyncIterator, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import httpx
import pytest
from fastapi import FastAPI, Form, Request
from fastapi.responses import JSONResponse, RedirectResponse
from starlette.types import Scope

from service.api.limits import RequestLimits
from service.runtime.http_settings import HttpSettings
from tests.api.story import TOKEN, Story
from tests.api.web.chromium import RunningServer

MB = 1024 * 1024
CHUNK = 64 * 1024
GOOD = "good-token"


class Body:
    """A request body of ``size`` bytes made chunk by chunk; counts what was pulled."""

    def __init__(self, size: int, chunk: int = CHUNK) -> None:
        self.size = size
        self.chunk = chunk
        self.pulled = 0

    async def __aiter__(self) -> AsyncIterator[bytes]:
        block = b"[" + b"1," * (self.chunk // 2 - 1) + b"1"
        while self.pulled < self.size:
            piece = block[: min(self.chunk, self.size - self.pulled)]
            self.pulled += len(piece)
            yield piece


# -- the middleware around a small app ----------------------------------------------------


def small_app(settings: HttpSettings, handled: list[str]) -> FastAPI:
    app = FastAPI()

    @app.post("/api/v1/echo")
    async def echo(payload: list[int]) -> dict[str, int]:
        handled.append("echo")
        return {"items": len(payload)}

    @app.get("/api/v1/open")
    async def open_route() -> dict[str, str]:
        handled.append("open")
        return {"ok": "yes"}

    @app.post("/login")
    async def login(token: str = Form(default=""), username: str = Form(default="")) -> Any:
        handled.append("login")
        if token == GOOD:
            return RedirectResponse("/worklist", status_code=303)
        return JSONResponse({"detail": "no"}, status_code=401)

    @app.post("/upload")
    async def upload(request: Request) -> dict[str, int]:
        return {"bytes": len(await request.body())}

    def authenticated(scope: Scope) -> bool:
        return (b"authorization", f"Bearer {GOOD}".encode()) in scope["headers"]

    # A stopped clock: no sign-in attempt comes back during a test, however slow the machine.
    app.add_middleware(
        RequestLimits, settings=settings, authenticated=authenticated, clock=lambda: 1000.0
    )
    return app


def client_for(app: FastAPI, address: str = "10.1.1.1") -> httpx.AsyncClient:
    transport = httpx.ASGITransport(app=app, client=(address, 40000))
    return httpx.AsyncClient(transport=transport, base_url="http://testserver")


LIMITS = HttpSettings(max_body_bytes=MB, login_max_body_bytes=1024)


async def test_a_declared_length_over_the_limit_is_refused_before_reading() -> None:
    handled: list[str] = []
    body = Body(100 * MB)
    headers = {"Authorization": f"Bearer {GOOD}", "Content-Length": str(100 * MB)}
    async with client_for(small_app(LIMITS, handled)) as client:
        response = await client.post("/api/v1/echo", content=body, headers=headers)
    assert response.status_code == 413
    assert response.headers["connection"] == "close"
    assert body.pulled <= CHUNK and handled == []


async def test_a_chunked_body_is_cut_off_once_it_passes_the_limit() -> None:
    handled: list[str] = []
    body = Body(300 * MB)  # no Content-Length: counted as it arrives
    async with client_for(small_app(LIMITS, handled)) as client:
        response = await client.post(
            "/api/v1/echo", content=body, headers={"Authorization": f"Bearer {GOOD}"}
        )
    assert response.status_code == 413
    assert body.pulled <= MB + 2 * CHUNK and handled == []


async def test_an_unauthenticated_body_is_refused_without_reading_a_byte() -> None:
    handled: list[str] = []
    for headers in ({}, {"Authorization": "Bearer wrong"}, {"Content-Length": str(100 * MB)}):
        body = Body(100 * MB)
        async with client_for(small_app(LIMITS, handled)) as client:
            response = await client.post("/api/v1/echo", content=body, headers=headers)
        assert response.status_code in (401, 413)
        if "Content-Length" not in headers:
            assert response.status_code == 401
            assert response.headers["www-authenticate"] == "Bearer"
        assert body.pulled <= CHUNK, headers  # httpx pulls one chunk ahead at most
        assert handled == []


async def test_bodies_within_the_limit_and_requests_without_body_pass() -> None:
    handled: list[str] = []
    async with client_for(small_app(LIMITS, handled)) as client:
        ok = await client.post(
            "/api/v1/echo", json=[1] * 1000, headers={"Authorization": f"Bearer {GOOD}"}
        )
        opened = await client.get("/api/v1/open")  # no body: the route's own check decides
        small = await client.post("/upload", content=b"x" * (MB - 1))
        big = await client.post("/upload", content=Body(MB + 1))
    assert ok.status_code == 200 and ok.json() == {"items": 1000}
    assert opened.status_code == 200 and small.json() == {"bytes": MB - 1}
    assert big.status_code == 413


async def test_failed_sign_ins_are_limited_per_address() -> None:
    settings = HttpSettings(login_burst_per_address=3, login_burst_per_account=100)
    handled: list[str] = []
    app = small_app(settings, handled)
    async with client_for(app, "10.9.9.9") as client:
        statuses = [(await client.post("/login", data={"token": "guess"})).status_code]
        statuses += [(await client.post("/login", data={"token": "g"})).status_code]
        statuses += [(await client.post("/login", data={"token": "g"})).status_code]
        refused = await client.post("/login", data={"token": GOOD})
        body = Body(10 * MB)  # refused before reading: its size does not matter
        form = {"Content-Type": "application/x-www-form-urlencoded"}
        unread = await client.post("/login", content=body, headers=form)
    assert statuses == [401, 401, 401]
    assert refused.status_code == 429 and int(refused.headers["retry-after"]) >= 1
    assert unread.status_code == 429 and body.pulled <= CHUNK
    assert handled.count("login") == 3  # the fourth never reached the sign-in
    async with client_for(app, "10.9.9.10") as other:  # another address is not punished
        assert (await other.post("/login", data={"token": GOOD})).status_code == 303


async def test_successful_sign_ins_do_not_count() -> None:
    settings = HttpSettings(login_burst_per_address=2)
    async with client_for(small_app(settings, [])) as client:
        for _ in range(10):
            assert (await client.post("/login", data={"token": GOOD})).status_code == 303


async def test_failed_sign_ins_are_limited_per_account_across_addresses() -> None:
    settings = HttpSettings(login_burst_per_address=100, login_burst_per_account=2)
    app = small_app(settings, [])
    statuses = []
    for n in range(3):  # a distributed guess at one account
        async with client_for(app, f"10.2.0.{n}") as client:
            form = {"username": "Dr.Who", "token": "guess"}
            statuses.append((await client.post("/login", data=form)).status_code)
    assert statuses == [401, 401, 429]
    async with client_for(app, "10.2.0.9") as client:  # the account name's case is no way out
        form = {"username": "dr.who", "token": "guess"}
        assert (await client.post("/login", data=form)).status_code == 429
        form = {"username": "someone-else", "token": "guess"}
        assert (await client.post("/login", data=form)).status_code == 401


async def test_a_large_sign_in_form_is_refused() -> None:
    async with client_for(small_app(LIMITS, [])) as client:
        declared = await client.post("/login", data={"token": "x" * 5000})
        streamed = await client.post(
            "/login",
            content=Body(10 * MB),
            headers={"Content-Type": "application/x-www-form-urlencoded"},
        )
    assert declared.status_code == 413 and streamed.status_code == 413


# -- the real server ----------------------------------------------------------------------


@contextmanager
def serving(story: Story, http: HttpSettings) -> Iterator[RunningServer]:
    """``ApiServer`` (the daemon's component) for ``story`` with these request limits, in its
    own thread and event loop."""
    settings = story.context.settings.model_copy(update={"http": http})
    server = RunningServer(dataclasses.replace(story.context, settings=settings))
    with server:
        yield server


def rss_bytes() -> int:
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) * 1024
    raise AssertionError("no VmRSS")


def send_body(address: tuple[str, int], head: bytes, size: int, chunked: bool) -> tuple[int, bytes]:
    """Send ``head`` then up to ``size`` body bytes made on the fly; stop when the server
    answers or hangs up. Returns (bytes of body sent, what the server answered)."""
    block = b"1," * (CHUNK // 2)
    sent = 0
    with socket.create_connection(address, timeout=60) as sock:
        sock.sendall(head)
        try:
            while sent < size:
                piece = block[: min(CHUNK, size - sent)]
                data = b"%x\r\n%s\r\n" % (len(piece), piece) if chunked else piece
                sock.sendall(data)
                sent += len(piece)
        except (BrokenPipeError, ConnectionResetError):
            pass
        try:
            answer = sock.recv(4096)
        except (ConnectionResetError, TimeoutError):
            answer = b""
    return sent, answer


def read_until_closed(sock: socket.socket) -> bytes:
    """Everything the server sends until it closes (the socket's timeout bounds the wait)."""
    received = b""
    while chunk := sock.recv(4096):
        received += chunk
    return received


def request_head(path: str, token: str | None, length: int | None) -> bytes:
    lines = [f"POST {path} HTTP/1.1", "Host: labsentinel", "Content-Type: application/json"]
    if token:
        lines.append(f"Authorization: Bearer {token}")
    lines.append(
        f"Content-Length: {length}" if length is not None else "Transfer-Encoding: chunked"
    )
    return ("\r\n".join(lines) + "\r\n\r\n").encode()


def test_huge_bodies_neither_grow_memory_nor_stall_the_loop(story: Story) -> None:
    # The finding: one 100 MB POST without a token took the daemon from 198 to 430 MB, and two
    # 300 MB bodies held /healthz for 6.3 s. Both attacks at once, /healthz polled throughout.
    with serving(story, HttpSettings()) as running:
        url = f"http://127.0.0.1:{running.address[1]}/healthz"
        httpx.get(url).raise_for_status()
        before = rss_bytes()
        peak = before
        slowest = 0.0
        results: dict[str, tuple[int, bytes]] = {}

        def attack(name: str, head: bytes, size: int, chunked: bool) -> None:
            results[name] = send_body(running.address, head, size, chunked)

        lookup = "/api/v1/patients/lookup"
        attackers = [
            threading.Thread(
                target=attack,
                args=("300 MB with a token", request_head(lookup, TOKEN, None), 300 * MB, True),
            ),
            threading.Thread(
                target=attack,
                args=("100 MB without", request_head(lookup, None, 100 * MB), 100 * MB, False),
            ),
            threading.Thread(
                target=attack,
                args=("100 MB chunked without", request_head(lookup, None, None), 100 * MB, True),
            ),
        ]
        for thread in attackers:
            thread.start()
        polls = 0
        while any(t.is_alive() for t in attackers) or polls < 5:
            started = time.monotonic()
            assert httpx.get(url, timeout=30).status_code == 200
            slowest = max(slowest, time.monotonic() - started)
            peak = max(peak, rss_bytes())
            polls += 1
        for thread in attackers:
            thread.join()
    assert results["300 MB with a token"][1].startswith(b"HTTP/1.1 413"), results
    assert results["100 MB without"][1].startswith(b"HTTP/1.1 401"), results
    assert results["100 MB chunked without"][1].startswith(b"HTTP/1.1 401"), results
    # Cut off: what the kernel's socket buffers took, never the bodies.
    assert all(sent < 32 * MB for sent, _ in results.values()), results
    assert peak - before < 50 * MB, f"RSS grew by {(peak - before) / MB:.0f} MB"
    assert slowest < 3.0, f"/healthz took {slowest:.2f} s during the attack (was 6.3 s)"


def test_a_body_that_never_arrives_is_cut_off_at_the_deadline(story: Story) -> None:
    # Slow loris: headers of a 100-byte body, then silence. The deadline is 1 s; the bound
    # of 30 s only catches a server that waits forever.
    with (
        serving(story, HttpSettings(body_read_timeout_s=1)) as running,
        socket.create_connection(running.address, timeout=30) as sock,
    ):
        sock.sendall(request_head("/api/v1/patients/lookup", TOKEN, 100))
        started = time.monotonic()
        answer = read_until_closed(sock)
        waited = time.monotonic() - started
    assert answer.startswith(b"HTTP/1.1 408"), answer
    assert b"connection: close" in answer.lower()
    assert waited < 30


def test_headers_that_never_end_are_cut_off(story: Story) -> None:
    with serving(story, HttpSettings(header_read_timeout_s=1)) as running:
        with socket.create_connection(running.address, timeout=30) as sock:
            sock.sendall(b"GET /healthz HTTP/1.1\r\nHost: x\r\nX-Slow: ")  # and nothing more
            started = time.monotonic()
            closed = sock.recv(4096)
            waited = time.monotonic() - started
        # A complete request on a fresh connection is still served.
        assert httpx.get(f"http://127.0.0.1:{running.address[1]}/healthz").status_code == 200
    assert closed == b"" and waited < 30


@pytest.mark.parametrize("ending", [b"\r\n\r\n", b""], ids=["complete", "unfinished"])
def test_oversized_headers_are_refused(story: Story, ending: bytes) -> None:
    with (
        serving(story, HttpSettings(max_header_bytes=4096)) as running,
        socket.create_connection(running.address, timeout=30) as sock,
    ):
        sock.sendall(b"GET /healthz HTTP/1.1\r\nHost: x\r\nX-Big: " + b"a" * 8192 + ending)
        answer = sock.recv(4096)
    assert answer.startswith((b"HTTP/1.1 431", b"HTTP/1.1 400")), answer
