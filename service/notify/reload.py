"""Hot reload of routing and rosters on SIGHUP (the Alertmanager/nginx convention).

``RoutingReloader.reload`` reads the routing file and its roster changes
(``service.notify.rosters.read_routing``), validates them together against the channels the
running paging was built with, and only then swaps the application's one ``RoutedPaging``
configuration (a single attribute, so the pipeline, the dispatcher and the escalation job,
which share that object, all move at once). A file that does not validate leaves the old
configuration in use, logs the file and key (never patient data: these files hold none) and
counts ``labsentinel_config_reload_total{result="error"}``; a good one counts ``ok`` and sets
``labsentinel_config_info{version=<hash>}`` and ``…_loaded_timestamp_seconds``.

``ReloadComponent`` is the daemon's part: it installs the SIGHUP handler on the running
loop, reloads in a worker thread (the files are read off the loop), and removes the handler
when the daemon stops. Without a routing file (flat paging) there is nothing to reload.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import signal
import time
from dataclasses import replace

from service.notify.ports import NotifyApp
from service.notify.rosters import read_routing, routing_path
from service.notify.routed import RoutedPaging
from service.runtime import metrics
from service.runtime.settings import ConfigError, Settings

log = logging.getLogger(__name__)

RESULTS = ("ok", "error")


class RoutingReloader:
    """Reloads ``paging``'s routing from ``settings``' files (see the module doc)."""

    def __init__(self, paging: object, settings: Settings) -> None:
        self.paging = paging if isinstance(paging, RoutedPaging) else None
        self.settings = settings
        self.version = ""
        self.loaded_at = 0.0
        for result in RESULTS:
            metrics.config_reloads.labels(result)
        if self.paging is not None:
            self._loaded(self._read_version())

    def _channels(self) -> set[str]:
        assert self.paging is not None
        enabled = {name for name, ch in self.settings.channels.items() if ch.enabled}
        # The audit channels include ``--pages-out``, which is not under [channels].
        return enabled | set(self.paging.config.audit_channels)

    def _read_version(self) -> str:
        """The version of the files as started with (they were validated at start)."""
        try:
            path = routing_path(self.settings)
            return read_routing(path, self.settings.hospital.zone, self._channels()).version
        except ConfigError:
            return "unknown"  # changed on disk since start; the next reload says why

    def _loaded(self, version: str) -> None:
        metrics.config_info.clear()
        metrics.config_info.labels(version).set(1)
        self.loaded_at = time.time()
        metrics.config_loaded_at.set(self.loaded_at)
        self.version = version

    def reload(self) -> bool:
        """Read, validate and swap in the routing and rosters. True when the new ones are in
        use; False (old kept, reason logged) when they do not validate or there is no routing
        file. Blocks on reading the files; never raises for a bad file."""
        if self.paging is None:
            log.info("reload requested: no routing file configured, nothing to reload")
            return False
        try:
            path = routing_path(self.settings)
            loaded = read_routing(path, self.settings.hospital.zone, self._channels())
        except ConfigError as exc:
            metrics.config_reloads.labels("error").inc()
            log.error(
                "routing reload failed; the previous routing and rosters stay in use",
                extra={"reason": str(exc), "version": self.version},
            )
            return False
        self.paging.config = replace(self.paging.config, routing=loaded.routing)
        self._loaded(loaded.version)
        metrics.config_reloads.labels("ok").inc()
        log.info(
            "routing and rosters reloaded",
            extra={"version": loaded.version, "files": [str(p) for p in loaded.files]},
        )
        return True


class ReloadComponent:
    """The daemon's SIGHUP handler: each signal reloads once (in a worker thread); signals
    that arrive during a reload are folded into one more reload after it."""

    name = "reload"

    def __init__(self, app: NotifyApp) -> None:
        self.reloader = RoutingReloader(app.pipeline.delivery.paging, app.settings)
        self.attempts = 0  # finished reloads, good or bad
        self.finished = asyncio.Event()  # set after each finished reload (for tests)
        self.listening = asyncio.Event()  # set once the SIGHUP handler is installed
        self._wanted = asyncio.Event()

    async def run(self, stop: asyncio.Event) -> None:
        loop = asyncio.get_running_loop()
        installed = False
        # Not possible outside the main thread (tests run the daemon in a worker loop).
        with contextlib.suppress(NotImplementedError, RuntimeError, ValueError):
            loop.add_signal_handler(signal.SIGHUP, self._wanted.set)
            installed = True
            self.listening.set()
            log.info(
                "routing and rosters in use; SIGHUP reloads them",
                extra={"version": self.reloader.version or "none (no routing file)"},
            )
        try:
            while not stop.is_set():
                waiter = asyncio.ensure_future(self._wanted.wait())
                stopper = asyncio.ensure_future(stop.wait())
                await asyncio.wait({waiter, stopper}, return_when=asyncio.FIRST_COMPLETED)
                waiter.cancel()
                stopper.cancel()
                if stop.is_set():
                    break
                self._wanted.clear()
                await asyncio.to_thread(self.reloader.reload)
                self.attempts += 1
                self.finished.set()
        finally:
            if installed:
                loop.remove_signal_handler(signal.SIGHUP)
