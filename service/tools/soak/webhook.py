"""The failing pager: a local webhook receiver that fails a counted number of requests, and
the scenario that pages through it.

Blocking; not for use inside an event loop.
"""

from __future__ import annotations

import contextlib
import threading
import time
from collections import Counter
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

from sqlalchemy import text

from service.runtime.settings import default_config_path
from service.tools.soak.audit import ScenarioResult
from service.tools.soak.run import Run
from service.tools.soak.scenarios import finish


class FlakyWebhook:
    """A local HTTP receiver that fails every other request (a 5xx, or a stall past the
    client's timeout) until it has failed ``failures`` of them, then answers 200. Records
    what it accepted.

    The fault is counted, never timed: a loaded machine that is slow to start the daemon
    cannot end a time window before the first request, and so cannot make the scenario pass
    without a fault having been injected."""

    def __init__(self, failures: int, stall_s: float = 2.0) -> None:
        self.to_fail = failures
        self.stall_s = stall_s
        self.requests = 0
        self.failed = Counter[str]()
        self.accepted: list[tuple[str, str]] = []  # (idempotency key, alert key)
        self._lock = threading.Lock()
        hook = self

        class Handler(BaseHTTPRequestHandler):
            def log_message(self, *args: Any) -> None:  # quiet
                pass

            def do_POST(self) -> None:  # noqa: N802 (http.server's naming)
                length = int(self.headers.get("Content-Length") or 0)
                self.rfile.read(length)
                with hook._lock:
                    hook.requests += 1
                    n = hook.requests
                    mode = "ok"
                    if sum(hook.failed.values()) < hook.to_fail and n % 2 == 0:
                        mode = "5xx" if n % 4 == 0 else "timeout"
                        hook.failed[mode] += 1
                if mode == "timeout":
                    time.sleep(hook.stall_s)  # the client gave up already
                    return self._reply(504)
                if mode == "5xx":
                    return self._reply(503)
                with hook._lock:
                    hook.accepted.append(
                        (
                            self.headers.get("Idempotency-Key", ""),
                            self.headers.get("X-LabSentinel-Alert-Id", ""),
                        )
                    )
                self._reply(200)

            def _reply(self, status: int) -> None:
                with contextlib.suppress(OSError):
                    self.send_response(status)
                    self.send_header("Content-Length", "0")
                    self.end_headers()

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.server.daemon_threads = True
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}/page"
        self._thread = threading.Thread(target=self.server.serve_forever, daemon=True)
        self._thread.start()

    def close(self) -> None:
        self.server.shutdown()
        self.server.server_close()


def webhook_config(workdir: Path, url: str, timeout_s: float) -> Path:
    """The shipped settings plus a webhook channel ``hook`` (written next to the catalogs'
    fallback: relative catalog paths still resolve to the shipped ones)."""
    shipped = default_config_path().read_text()
    path = workdir / "labsentinel-webhook.toml"
    path.write_text(
        shipped + f'\n[channels.hook]\ntype = "webhook"\nurl = "{url}"\ntimeout_s = {timeout_s}\n'
    )
    return path


def scenario_flaky_pager(
    broker: Any,
    database_url: str,
    workdir: Path,
    *,
    failures: int = 10,
    messages: int = 2000,
    planted: int = 12,
    seed: int = 4,
    timeout_s: float = 120.0,
) -> ScenarioResult:
    """The webhook pager fails every other request (503s and stalls past the timeout) until
    it has failed ``failures`` of them; every notification still reaches it, repeats only
    with the same key. ``injected`` counts the requests it failed."""
    started = time.monotonic()
    hook = FlakyWebhook(failures, stall_s=1.5)
    run = Run(broker, database_url, workdir, messages=messages, planted=planted, seed=seed)
    run.publish()
    config = webhook_config(workdir, hook.url, timeout_s=0.5)
    daemon = run.daemon(
        config=config,
        LABSENTINEL_ROUTING_DEFAULT_CHANNELS='["hook"]',
        LABSENTINEL_DISPATCHER_RETRY_INITIAL_S="0.2",
        LABSENTINEL_DISPATCHER_RETRY_MAX_S="1.0",
    )
    try:
        daemon.start()
        result = finish(
            run, timeout_s=timeout_s, fault="", injected=0, started=started, alive=[daemon]
        )
        audit = run.audit(channel="hook")
        with run.engine.connect() as connection:
            hook_ids = set(
                connection.execute(
                    text("SELECT notification_id FROM outbox WHERE channel = 'hook'")
                ).scalars()
            )
            keys: dict[str, str] = dict(
                connection.execute(  # type: ignore[arg-type]
                    text("SELECT notification_id, dedup_key FROM notifications")
                ).all()
            )
        received = Counter(key.split(".")[0] for key, _ in hook.accepted)
        missing = hook_ids - set(received)
        audit.lost += len(missing)
        audit.duplicated = sum(n - 1 for n in received.values() if n > 1)
        audit.inconsistent_keys += sum(
            1 for key, dedup in hook.accepted if keys.get(key.split(".")[0]) != dedup
        )
        if missing:
            audit.details.append(f"notifications the webhook never accepted: {len(missing)}")
        # The pages-out audit covers the planted cases; this one the webhook deliveries.
        audit.paged, audit.unexpected = result.audit.paged, result.audit.unexpected
        failed = sum(hook.failed.values())
        return ScenarioResult(
            fault=(
                f"webhook pager failing every other request, {failed} failures (503 and timeouts)"
            ),
            injected=failed,
            audit=audit,
            seconds=time.monotonic() - started,
            notes=(
                f"{hook.failed['5xx']} × 503, {hook.failed['timeout']} × timeout; "
                f"{len(hook_ids)} webhook deliveries"
            ),
        )
    finally:
        run.close()
        hook.close()
