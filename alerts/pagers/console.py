"""Console transport: one human-readable block per delivery, for development and demos.

Writes to the given stream, else to whatever ``sys.stdout`` is at send time (so a redirected
or captured stdout is honoured). Nothing to retry: a failed write is reported, never raised.
"""

from __future__ import annotations

import sys
from typing import TextIO

from alerts.notification import Notification
from alerts.pagers.base import DeliveryResult
from alerts.render import render_text


class ConsolePager:
    def __init__(self, name: str = "console", stream: TextIO | None = None) -> None:
        self.name = name
        self._stream = stream

    async def send(self, notification: Notification, recipient: str) -> DeliveryResult:
        out = self._stream if self._stream is not None else sys.stdout
        # A non-paging notice (a worklist finding announced) must not read as a page.
        kind = "notice" if notification.severity == "info" else "page"
        block = f"----- {kind} to {recipient} -----\n{render_text(notification)}\n"
        try:
            out.write(block)
            out.flush()
        except (OSError, ValueError) as exc:  # ValueError: write to a closed stream
            return DeliveryResult.final(f"console write failed ({type(exc).__name__})", "io")
        return DeliveryResult.delivered()

    async def close(self) -> None:
        # The stream belongs to whoever passed it (or to the interpreter): never closed here.
        return None
