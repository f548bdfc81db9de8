"""JSON-lines transport: one line per delivered notification, DESIGN.md's contract.

The dispatcher calls ``send`` once per (notification, recipient), but the contract is one line
per notification (``recipients`` inside it lists everyone), so a notification id already in
the file is not written again. The ids already present are read when the file is first used,
so a restart (or ``labsentinel replay`` run twice into one file) does not duplicate lines.

Each line is appended, flushed and fsynced before ``send`` returns: these are pages, and losing
one on a crash costs more than the sync. A torn last line left by a crash is ended with a
newline before the next append, so it cannot swallow the next record. One pager instance per
file: two processes appending to the same file are not coordinated.

Outcome: delivered (also for a duplicate id); final when the notification cannot be encoded
as JSON (NaN value, an ``extra`` that is not JSON); retryable on any OSError (the file is
reopened on the next attempt).
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import os
from pathlib import Path
from typing import BinaryIO

from alerts.notification import Notification
from alerts.pagers.base import DeliveryResult


class JsonLinesPager:
    def __init__(self, path: str | os.PathLike[str], name: str = "jsonl") -> None:
        self.name = name
        self._path = Path(path)
        self._file: BinaryIO | None = None
        self._written: set[str] = set()
        self._lock = asyncio.Lock()  # one writer at a time; the id set and the file agree

    async def send(self, notification: Notification, recipient: str) -> DeliveryResult:
        try:
            line = json.dumps(notification.to_json(), ensure_ascii=False, allow_nan=False)
            data = (line + "\n").encode("utf-8")
        except (TypeError, ValueError) as exc:
            return DeliveryResult.final(f"encoding error ({type(exc).__name__})", "encoding")
        async with self._lock:
            try:
                if self._file is None:
                    await asyncio.to_thread(self._open)
                if notification.notification_id in self._written:
                    return DeliveryResult.delivered("already written", "duplicate")
                await asyncio.to_thread(self._append, data)
            except OSError as exc:
                await asyncio.to_thread(self._drop_file)
                return DeliveryResult.retryable(f"write failed ({type(exc).__name__})", "io")
            self._written.add(notification.notification_id)
        return DeliveryResult.delivered()

    async def close(self) -> None:
        async with self._lock:
            await asyncio.to_thread(self._drop_file)

    # Blocking helpers, run in a worker thread under the lock.

    def _open(self) -> None:
        self._path.parent.mkdir(parents=True, exist_ok=True)
        created = not self._path.exists()
        written: set[str] = set()
        torn = False
        if not created:
            with self._path.open("rb") as existing:
                last = b""
                for raw in existing:
                    last = raw
                    notification_id = _notification_id(raw)
                    if notification_id is not None:
                        written.add(notification_id)
                torn = bool(last) and not last.endswith(b"\n")
        handle = self._path.open("ab")
        if torn:
            handle.write(b"\n")
        if created:
            _fsync_dir(self._path.parent)  # make the new file's directory entry durable
        self._file, self._written = handle, written

    def _append(self, data: bytes) -> None:
        assert self._file is not None
        self._file.write(data)
        self._file.flush()
        os.fsync(self._file.fileno())

    def _drop_file(self) -> None:
        handle, self._file = self._file, None
        if handle is not None:
            # A failed flush of a handle we are abandoning: the next open re-reads the file.
            with contextlib.suppress(OSError):
                handle.close()


def _notification_id(raw: bytes) -> str | None:
    try:
        doc = json.loads(raw)
    except ValueError:  # a torn or foreign line: not ours to judge
        return None
    value = doc.get("notification_id") if isinstance(doc, dict) else None
    return value if isinstance(value, str) else None


def _fsync_dir(directory: Path) -> None:
    try:
        fd = os.open(directory, os.O_RDONLY)
    except OSError:
        return  # not supported on this platform / filesystem
    try:
        os.fsync(fd)
    except OSError:
        pass
    finally:
        os.close(fd)
