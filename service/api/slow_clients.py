"""uvicorn's h11 protocol with a deadline on the request line and headers.

uvicorn closes a connection that stays idle after a response (``timeout_keep_alive``) but
waits forever for the headers of a request that has begun: a client that sends one header
byte a minute holds its connection, and enough of them fill ``limit_concurrency``. Here the
headers must be complete ``header_timeout_s`` after the connection opened or the previous
response ended, else the connection is closed. The body has its own deadline
(``service.api.limits``).
"""

from __future__ import annotations

import asyncio
from typing import Any

from uvicorn.protocols.http.h11_impl import H11Protocol


class _HeaderDeadlineH11(H11Protocol):
    header_timeout_s = 20.0

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self._header_timer: asyncio.TimerHandle | None = None

    def connection_made(self, transport: asyncio.Transport) -> None:  # type: ignore[override]
        super().connection_made(transport)
        self._arm()

    def on_response_complete(self) -> None:
        super().on_response_complete()
        self._arm()

    def handle_events(self) -> None:
        super().handle_events()
        if not self._awaiting_headers():
            self._disarm()  # a request's headers are complete

    def connection_lost(self, exc: Exception | None) -> None:
        self._disarm()
        super().connection_lost(exc)

    def _arm(self) -> None:
        self._disarm()
        if not self.transport.is_closing() and self._awaiting_headers():
            self._header_timer = self.loop.call_later(self.header_timeout_s, self._late)

    def _disarm(self) -> None:
        if self._header_timer is not None:
            self._header_timer.cancel()
            self._header_timer = None

    def _awaiting_headers(self) -> bool:
        """No request yet, or the last one answered (a pipelined next one may be running)."""
        return self.cycle is None or self.cycle.response_complete

    def _late(self) -> None:
        self._header_timer = None
        if self._awaiting_headers() and not self.transport.is_closing():
            self.transport.close()


def h11_with_header_deadline(header_timeout_s: float) -> type[H11Protocol]:
    """The protocol class to pass as uvicorn's ``http``."""
    return type(
        "H11WithHeaderDeadline", (_HeaderDeadlineH11,), {"header_timeout_s": header_timeout_s}
    )
