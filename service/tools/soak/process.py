"""The daemon under test: one ``labsentinel run`` subprocess with its own pages and log files.

Blocking; not for use inside an event loop.
"""

from __future__ import annotations

import contextlib
import os
import re
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

LABSENTINEL = [sys.executable, "-m", "service.cli.main"]


class DaemonProcess:
    """One ``labsentinel run`` process: its logs (stderr) appended to ``log_path``, its stdout
    (the console pager's output, when configured) to ``log_path`` + ``.stdout``.

    ``starts``, ``kills`` and ``terms`` count the faults really delivered (a signal sent to a
    live process), so a scenario reports what it injected, not what it meant to."""

    def __init__(
        self,
        env: dict[str, str],
        pages_out: Path,
        log_path: Path,
        config: Path | None = None,
    ) -> None:
        self.env = env
        self.pages_out = pages_out
        self.log_path = log_path
        self.config = config
        self.process: subprocess.Popen[bytes] | None = None
        self.starts = 0
        self.kills = 0
        self.terms = 0

    def start(self) -> DaemonProcess:
        command = [*LABSENTINEL, "run", "--pages-out", str(self.pages_out)]
        if self.config is not None:
            command += ["--config", str(self.config)]
        stdout_path = self.log_path.with_name(self.log_path.name + ".stdout")
        with self.log_path.open("ab") as log, stdout_path.open("ab") as out:
            self.process = subprocess.Popen(
                command,
                env={**os.environ, **self.env},
                stdout=out,
                stderr=log,
                cwd=self.log_path.parent,
            )
        self.starts += 1
        return self

    @property
    def alive(self) -> bool:
        return self.process is not None and self.process.poll() is None

    def kill(self) -> None:
        """SIGKILL the process if it is alive and wait for it (up to 10 s)."""
        if self.alive:
            assert self.process is not None
            self.process.send_signal(signal.SIGKILL)
            self.process.wait(10)
            self.kills += 1

    def terminate(self, timeout_s: float = 30.0) -> int:
        """SIGTERM and wait; returns the exit status (SIGKILL after ``timeout_s``: -9)."""
        assert self.process is not None
        if self.process.poll() is None:
            self.process.send_signal(signal.SIGTERM)
            self.terms += 1
            try:
                return self.process.wait(timeout_s)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait()
        return int(self.process.returncode)

    def log_text(self) -> str:
        return self.log_path.read_text(errors="replace") if self.log_path.exists() else ""

    def wait_for_log(self, needle: str, timeout_s: float, *, after: int = 0) -> None:
        """Block until ``needle`` appears in the log past character ``after`` (pass the log's
        length before a fault to see only what came after it).

        Raises TimeoutError after ``timeout_s``, RuntimeError if the process exits first."""
        deadline = time.monotonic() + timeout_s
        while True:
            if needle in self.log_text()[after:]:
                return
            if not self.alive:
                raise RuntimeError(f"daemon exited before logging {needle!r}; see {self.log_path}")
            if time.monotonic() > deadline:
                raise TimeoutError(f"{needle!r} not logged in {timeout_s} s; see {self.log_path}")
            time.sleep(0.1)

    def api_port(self, timeout_s: float = 15.0) -> int | None:
        """The port the API bound (LABSENTINEL_API_PORT=0), read from the JSON log."""
        deadline = time.monotonic() + timeout_s
        pattern = re.compile(rb'"msg": "api listening".*?"port": (\d+)')
        while time.monotonic() < deadline:
            found = pattern.findall(self.log_path.read_bytes()) if self.log_path.exists() else []
            if found:
                return int(found[-1])
            if not self.alive:
                return None
            time.sleep(0.1)
        return None


@contextlib.contextmanager
def running(*processes: DaemonProcess) -> Iterator[None]:
    """Start the processes; kill whatever is still alive on the way out."""
    try:
        for process in processes:
            process.start()
        yield
    finally:
        for process in processes:
            if process.alive:
                process.kill()
