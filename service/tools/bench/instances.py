"""Daemon processes of a bench run: N ``Daemon``s in one consumer group, timed from the
group's first commit to its last, with their peak memory.

Blocking; spawns processes (``multiprocessing`` "spawn": each child imports this module).
"""

from __future__ import annotations

import asyncio
import json
import multiprocessing
import os
import tempfile
import time
from pathlib import Path
from typing import Any

from service.bootstrap import build_app
from service.daemon import Daemon
from service.ingest.consumer import kafka_options
from service.ingest.group_offsets import committed_offsets
from service.runtime.clock import MessageClock
from service.runtime.settings import Settings, load_settings
from service.tools.bench.recording import RecordingPager, standing_in


def instance_main(config: str | None, overrides: dict[str, Any], stop_file: str) -> None:
    """One daemon process of a scale-out run (multiprocessing target); runs until
    ``stop_file`` exists."""
    settings = load_settings(config, overrides=overrides)

    async def run() -> None:
        pager = RecordingPager()
        app = build_app(settings, clock=MessageClock(), transports=standing_in(settings, pager))
        daemon = Daemon(app, with_components=False)
        task = asyncio.create_task(daemon.run())
        while not os.path.exists(stop_file) and not task.done():
            await asyncio.sleep(0.1)
        daemon.stop.set()
        await task
        app.close()

    asyncio.run(run())


async def group_done(settings: Settings) -> int:
    """Messages committed by the consumer group, over all partitions."""
    offsets = await committed_offsets(
        kafka_options(settings.kafka), settings.kafka.group_id, settings.kafka.topics
    )
    return sum(offsets.values())


def run_instances(
    config: str | None, settings: Settings, total: int, instances: int
) -> dict[str, Any]:
    """N daemon processes in one consumer group over already-produced topics.

    Timed from the group's first commit to its last (process start-up and the group join are
    not throughput, as the raw consume is timed from its first fetch). Raises TimeoutError
    after an hour without the group committing ``total``.
    """
    # Migrate once before the instances start (they would serialise on the lock anyway).
    build_app(settings, transports=standing_in(settings, RecordingPager())).close()
    overrides = json.loads(
        settings.model_dump_json(include={"database", "kafka", "routing", "channels", "api"})
    )
    stop_file = tempfile.mktemp(prefix="labsentinel-bench-stop-")
    context = multiprocessing.get_context("spawn")
    workers = [
        context.Process(target=instance_main, args=(config, overrides, stop_file))
        for _ in range(instances)
    ]
    started = time.perf_counter()
    for worker in workers:
        worker.start()
    first_commit = None
    try:
        while True:
            done = asyncio.run(group_done(settings))
            if done and first_commit is None:
                first_commit = time.perf_counter()
            if done >= total:
                break
            if time.perf_counter() - started > 3600:
                raise TimeoutError(f"run committed {done}/{total}")
            time.sleep(0.5)  # each look opens a client: do not steal the daemon's CPU
        seconds = time.perf_counter() - (first_commit or started)
        peak_mb = max(peak_rss_mb(worker.pid) for worker in workers)
    finally:
        Path(stop_file).touch()
        for worker in workers:
            worker.join(60)
        Path(stop_file).unlink(missing_ok=True)
    return {
        "seconds": round(seconds, 3),
        "msgs_per_s": round(total / seconds, 1),
        "peak_rss_mb": peak_mb,
    }


def peak_rss_mb(pid: int | None) -> float:
    """The process's peak resident set (VmHWM) since it exec'd.

    Not getrusage(RUSAGE_CHILDREN): a spawned child is forked from this process first, and its
    maxrss would count this process's memory (the generated feed) for that moment.
    """
    try:
        for line in Path(f"/proc/{pid}/status").read_text().splitlines():
            if line.startswith("VmHWM:"):
                return round(int(line.split()[1]) / 1024, 1)
    except (OSError, ValueError):
        pass
    return 0.0
