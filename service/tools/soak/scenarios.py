"""The fault scenarios against the real daemon: SIGKILL, database outage, broker cut, two
instances, SIGTERM during a burst (the failing pager is in ``webhook``).

Each returns a ScenarioResult whose ``audit.ok`` says whether the guarantees held and whose
``injected`` counts the faults that really reached the daemon. They are deterministic for a
seed except for scheduling; `labsentinel soak` runs them with larger numbers than CI.

A fault is held until the daemon has observably met it (a log line, a count of connections
through the proxy), never for a fixed time alone: a loaded machine that is slow to start the
daemon cannot end the fault before it happened and so make a scenario pass vacuously.
Blocking; not for use inside an event loop.
"""

from __future__ import annotations

import random
import time
import uuid
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

import httpx

from service.tools.soak.audit import ScenarioResult
from service.tools.soak.postgres import PrivatePostgres
from service.tools.soak.process import DaemonProcess
from service.tools.soak.proxy import ProxiedBroker
from service.tools.soak.run import Run

# How long a scenario waits for the daemon to meet a fault before it calls the run broken.
FAULT_SEEN_TIMEOUT_S = 60.0


def http_status(url: str) -> int:
    """GET ``url``; its status code, or 0 when nothing answered (blocks up to 5 s)."""
    try:
        return httpx.get(url, timeout=5).status_code
    except httpx.HTTPError:
        return 0


def wait_until(condition: Callable[[], bool], *, timeout_s: float, what: str) -> None:
    """Block until ``condition()`` holds; raises TimeoutError naming ``what`` after
    ``timeout_s``."""
    deadline = time.monotonic() + timeout_s
    while not condition():
        if time.monotonic() > deadline:
            raise TimeoutError(f"{what}: not seen in {timeout_s} s")
        time.sleep(0.1)


def finish(
    run: Run,
    *,
    timeout_s: float,
    fault: str,
    injected: int,
    started: float,
    notes: str = "",
    alive: Sequence[DaemonProcess] = (),
) -> ScenarioResult:
    """Wait until everything is consumed and delivered, stop the daemons, audit."""
    run.wait_consumed(timeout_s, alive=alive)
    run.stop_all()
    return ScenarioResult(fault, injected, run.audit(), time.monotonic() - started, notes)


def scenario_sigkill(
    broker: Any,
    database_url: str,
    workdir: Path,
    *,
    kills: int = 10,
    messages: int = 3000,
    seed: int = 1,
    timeout_s: float = 180.0,
) -> ScenarioResult:
    """SIGKILL the daemon ``kills`` times at random moments, restart it each time.

    The feed is published in ``kills + 1`` slices, one before each start, so that most kills
    land while a batch is in flight (after the group has committed more than before); one
    kill in four lands during start-up instead (imports, migrations, group join). ``injected``
    counts the SIGKILLs that reached a live process.
    """
    rng = random.Random(seed)
    started = time.monotonic()
    run = Run(broker, database_url, workdir, messages=messages, seed=seed)
    step = max(1, len(run.feed.records) // (kills + 1))
    daemon = run.daemon()
    startup_kills = 0
    try:
        for i in range(kills):
            run.publish((i + 1) * step)
            before = run.committed() or 0
            daemon.start()
            if rng.random() < 0.25:
                time.sleep(rng.uniform(0.2, 3.0))  # a random moment of start-up, by design
                startup_kills += 1
            else:
                run.wait_progress(before, FAULT_SEEN_TIMEOUT_S, daemon)
                time.sleep(rng.uniform(0.0, 0.4))
            daemon.kill()
        run.publish()
        daemon.start()
        return finish(
            run,
            timeout_s=timeout_s,
            fault="SIGKILL of the daemon at random moments, then restart",
            injected=daemon.kills,
            started=started,
            notes=f"{startup_kills} during start-up",
            alive=[daemon],
        )
    finally:
        run.close()


def scenario_database_outage(
    broker: Any,
    pg: PrivatePostgres,
    workdir: Path,
    *,
    outage_s: float = 20.0,
    messages: int = 3000,
    seed: int = 2,
    timeout_s: float = 120.0,
) -> ScenarioResult:
    """Stop PostgreSQL mid-run, then start it: pause, not-ready, resume.

    The outage lasts until the consumer has logged its pause and ``/readyz`` has answered 503,
    and at least ``outage_s``. ``injected`` counts the consumer's pauses. ``pg`` must be a
    private cluster (it is really stopped); it is restarted in a ``finally`` whatever happens.
    Raises AssertionError when ``/readyz`` never reports the outage, TimeoutError when the
    consumer never meets it.
    """
    started = time.monotonic()
    url = pg.create_database(f"outage_{uuid.uuid4().hex[:8]}")
    run = Run(broker, url, workdir, messages=messages, seed=seed)
    half = len(run.feed.records) // 2
    run.publish(half)
    daemon = run.daemon()
    notes = []
    try:
        daemon.start()
        port = daemon.api_port()
        run.wait_progress(0, FAULT_SEEN_TIMEOUT_S, daemon)
        mark = len(daemon.log_text())
        outage_started = time.monotonic()
        pg.stop()
        try:
            run.publish()  # the rest arrives while the database is down
            daemon.wait_for_log(
                "consumption paused", timeout_s=FAULT_SEEN_TIMEOUT_S + outage_s, after=mark
            )
            if port is not None:
                readyz = f"http://127.0.0.1:{port}/readyz"
                try:
                    wait_until(
                        lambda: http_status(readyz) == 503,
                        timeout_s=FAULT_SEEN_TIMEOUT_S,
                        what="/readyz answering 503 during the outage",
                    )
                except TimeoutError as exc:
                    raise AssertionError(str(exc)) from exc
                notes.append("/readyz during outage: 503")
            if not daemon.alive:
                raise RuntimeError("the daemon exited during the database outage")
            time.sleep(max(0.0, outage_s - (time.monotonic() - outage_started)))
        finally:
            pg.start()
        pauses = daemon.log_text()[mark:].count("consumption paused")
        run.wait_consumed(timeout_s, alive=[daemon])
        if port is not None:
            notes.append(f"after: {http_status(f'http://127.0.0.1:{port}/readyz')}")
        run.stop_all()
        return ScenarioResult(
            fault=f"PostgreSQL stopped for {outage_s:g} s mid-run",
            injected=pauses,
            audit=run.audit(),
            seconds=time.monotonic() - started,
            notes="; ".join(notes),
        )
    finally:
        run.close()


def scenario_broker_cut(
    broker: ProxiedBroker,
    database_url: str,
    workdir: Path,
    *,
    cut_s: float = 30.0,
    messages: int = 3000,
    seed: int = 3,
    timeout_s: float = 120.0,
) -> ScenarioResult:
    """Cut every Kafka connection (and refuse new ones) mid-run; reconnect.

    The cut lasts until the daemon has tried to reconnect through the proxy and been refused,
    and at least ``cut_s``. ``injected`` counts the daemon's connections the cut reset or
    refused. Raises TimeoutError when the daemon never tries to reconnect.
    """
    started = time.monotonic()
    run = Run(broker, database_url, workdir, messages=messages, seed=seed)
    two_thirds = 2 * len(run.feed.records) // 3
    run.publish(two_thirds)
    daemon = run.daemon()
    proxy = broker.proxy
    try:
        daemon.start()
        run.wait_progress(0, FAULT_SEEN_TIMEOUT_S, daemon)
        aborted, refused = proxy.aborted, proxy.refused
        cut_started = time.monotonic()
        proxy.cut()
        try:
            wait_until(
                lambda: proxy.refused > refused or not daemon.alive,
                timeout_s=FAULT_SEEN_TIMEOUT_S + cut_s,
                what="the daemon reconnecting through the cut proxy",
            )
            time.sleep(max(0.0, cut_s - (time.monotonic() - cut_started)))
            alive = daemon.alive
        finally:
            proxy.restore()
        reset, refusals = proxy.aborted - aborted, proxy.refused - refused
        notes = "daemon stayed up" if alive else "daemon exited during the cut; restarted"
        notes += f"; {reset} connections reset, {refusals} reconnections refused"
        if not alive:
            daemon.start()
        run.publish()  # and new records after the reconnection
        return finish(
            run,
            timeout_s=timeout_s,
            fault=f"Kafka connections cut for {cut_s:g} s (TCP proxy)",
            injected=reset + refusals,
            started=started,
            notes=notes,
            alive=[daemon],
        )
    finally:
        run.close()


def scenario_two_instances(
    broker: Any,
    database_url: str,
    workdir: Path,
    *,
    messages: int = 3000,
    seed: int = 5,
    timeout_s: float = 120.0,
) -> ScenarioResult:
    """Two daemons in one consumer group, topics not keyed by patient: each planted case is
    paged exactly once across both (their pages files are unioned)."""
    started = time.monotonic()
    run = Run(broker, database_url, workdir, messages=messages, seed=seed, keyed=False)
    half = len(run.feed.records) // 2
    run.publish(half)
    a, b = run.daemon("a"), run.daemon("b")
    try:
        a.start()
        b.start()
        run.publish()
        return finish(
            run,
            timeout_s=timeout_s,
            fault="two instances in one group, topics not keyed",
            injected=2,
            started=started,
            alive=[a, b],
        )
    finally:
        run.close()


def scenario_sigterm_burst(
    broker: Any,
    database_url: str,
    workdir: Path,
    *,
    stops: int = 3,
    messages: int = 3000,
    seed: int = 6,
    timeout_s: float = 120.0,
    max_shutdown_s: float = 20.0,
) -> ScenarioResult:
    """SIGTERM while a burst is being consumed (``stops`` times, each once the group has
    committed more than before); each stop must exit 0 within ``max_shutdown_s`` (else
    AssertionError); the restarted daemon re-reads whatever was not committed. ``injected``
    counts the SIGTERMs that reached a live process."""
    started = time.monotonic()
    run = Run(broker, database_url, workdir, messages=messages, seed=seed)
    step = max(1, len(run.feed.records) // (stops + 1))
    daemon = run.daemon()
    slowest = 0.0
    try:
        for i in range(stops):
            run.publish((i + 1) * step)
            before = run.committed() or 0
            daemon.start()
            run.wait_progress(before, FAULT_SEEN_TIMEOUT_S, daemon)
            t0 = time.monotonic()
            status = daemon.terminate(max_shutdown_s)
            slowest = max(slowest, time.monotonic() - t0)
            if status != 0:
                raise AssertionError(f"SIGTERM: exit status {status}; see {daemon.log_path}")
        run.publish()
        daemon.start()
        return finish(
            run,
            timeout_s=timeout_s,
            fault="SIGTERM during a burst, then restart",
            injected=daemon.terms,
            started=started,
            notes=f"slowest shutdown {slowest:.1f} s",
            alive=[daemon],
        )
    finally:
        run.close()
