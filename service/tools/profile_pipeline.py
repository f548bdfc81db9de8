"""Where a message's time goes: ``python -m service.tools.profile_pipeline [--messages N] URL``.

Runs the synthetic feed through the real pipeline in one thread, batch by batch as the
consumer does (without Kafka), and prints per message: the pure stage (parse, checks, row
preparation), the transaction's wall and CPU time (their difference is waiting for the
database), and the wall time of its main steps and SQL statements. The database must be empty
(results are stored). This is the profile summarised in the README's Performance section;
``py-spy record --gil -p PID`` on a running daemon shows the same split.
"""

from __future__ import annotations

import argparse
import time
from collections.abc import Callable
from typing import Any

from sqlalchemy import event

from service.bootstrap import build_app
from service.db import staging
from service.db.migrate import upgrade
from service.ingest import pipeline as pipeline_module
from service.ingest import store
from service.ingest.pipeline import Incoming
from service.runtime.clock import MessageClock
from service.runtime.settings import load_settings
from service.tools.feedgen import generate_feed

STEPS = (
    (staging, "write", "COPY + move of staged rows (results, claims)"),
    (store, "upsert_results", "lab_results upsert"),
    (store, "claim_messages", "message claims"),
    (pipeline_module, "lock_patients", "patient locks, reads, creation"),
    (pipeline_module, "save_patients", "patient updates"),
    (store, "insert_orders", "medication_orders insert"),
)


def _timed(
    timers: dict[str, float], label: str, function: Callable[..., Any]
) -> Callable[..., Any]:
    def timed(*args: Any, **kwargs: Any) -> Any:
        started = time.perf_counter()
        try:
            return function(*args, **kwargs)
        finally:
            timers[label] = timers.get(label, 0.0) + time.perf_counter() - started

    return timed


def profile(database_url: str, messages: int, batch: int = 1000) -> list[str]:
    settings = load_settings(None, overrides={"database": {"url": database_url}})
    app = build_app(settings, clock=MessageClock())
    upgrade(app.engine)
    feed = generate_feed(messages=messages, patients=max(messages // 10, 1), planted=10)
    items = [Incoming(r.value, "kafka", r.topic, 0, i) for i, r in enumerate(feed.records)]
    timers: dict[str, float] = {}
    originals = [(module, name, getattr(module, name)) for module, name, _ in STEPS]
    for module, name, label in STEPS:
        setattr(module, name, _timed(timers, label, getattr(module, name)))
    statements: dict[str, float] = {}

    @event.listens_for(app.engine, "before_cursor_execute")
    def _before(connection: Any, *_: Any) -> None:
        connection.info["started"] = time.perf_counter()

    @event.listens_for(app.engine, "after_cursor_execute")
    def _after(connection: Any, _cursor: Any, statement: str, *_: Any) -> None:
        key = " ".join(statement.split())[:60]
        statements[key] = (
            statements.get(key, 0.0) + time.perf_counter() - connection.info["started"]
        )

    stage = store_wall = store_cpu = 0.0
    pipeline = app.pipeline
    try:
        for first in range(0, len(items), batch):
            started = time.perf_counter()
            staged = pipeline.stage_batch(items[first : first + batch])
            stored, cpu = time.perf_counter(), time.process_time()
            pipeline.store_batch(staged)
            stage += stored - started
            store_wall += time.perf_counter() - stored
            store_cpu += time.process_time() - cpu
    finally:
        for module, name, original in originals:
            setattr(module, name, original)
        app.close()
    n = len(items)

    def per(seconds: float) -> str:
        return f"{seconds / n * 1e6:6.1f} µs"

    lines = [
        f"{n} messages, {app.engine.dialect.name}, batches of {batch}: "
        f"{n / (stage + store_wall):,.0f} msg/s in one thread",
        f"{per(stage)}  stage: parse, checks, row preparation (CPU)",
        f"{per(store_wall)}  transaction, wall",
        f"{per(store_cpu)}  transaction, CPU of this process",
    ]
    lines += [f"{per(t)}    {label}" for label, t in _largest(timers, 10)]
    lines += [f"{per(t)}    SQL: {sql}" for sql, t in _largest(statements, 8)]
    return lines


def _largest(totals: dict[str, float], count: int) -> list[tuple[str, float]]:
    return sorted(totals.items(), key=lambda item: -item[1])[:count]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("database_url", help="an empty database (it is migrated and written)")
    parser.add_argument("--messages", type=int, default=100_000)
    args = parser.parse_args()
    for line in profile(args.database_url, args.messages):
        print(line)


if __name__ == "__main__":
    main()
