"""``labsentinel soak``: the reliability suite's fault scenarios, longer and at scale.

Runs against a private PostgreSQL cluster and a Tansu broker behind a TCP proxy, both started
and removed by the command (service.tools.soak); the shared database server is never touched.
The ``kafka-*`` scenarios start a three-node Apache Kafka cluster of their own
(service.tools.kafka; java and mvn needed).
Prints one JSON line per scenario and a Markdown table (README "Reliability"); exits 1 when a
guarantee did not hold.
"""

from __future__ import annotations

import argparse
import json
import logging
import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

from service.runtime.logs import describe_exception
from service.runtime.settings import Settings

COMMANDS: tuple[str, ...] = ("soak",)
# On a three-node Apache Kafka cluster (java and mvn needed; service.tools.kafka).
KAFKA_SCENARIOS = ("kafka-leader-kill", "kafka-rolling", "kafka-rebalance")
SCENARIOS = (
    "sigkill",
    "outage",
    "broker",
    "pager",
    "instances",
    "sigterm",
    *KAFKA_SCENARIOS,
    "fuzz",
)


def register(
    sub: argparse._SubParsersAction,  # type: ignore[type-arg]
    config_args: Callable[[argparse.ArgumentParser], None],
) -> None:
    soak = sub.add_parser("soak", help="fault injection against the real daemon, at length")
    soak.add_argument("--kills", type=int, default=50, help="SIGKILLs of the daemon")
    soak.add_argument("--messages", type=int, default=20_000, help="feed size per scenario")
    soak.add_argument("--outage-s", type=float, default=20.0, help="database outage length")
    soak.add_argument("--broker-cut-s", type=float, default=30.0, help="Kafka cut length")
    soak.add_argument(
        "--pager-failures",
        type=int,
        default=40,
        help="requests the webhook fails (every other one) before it recovers",
    )
    soak.add_argument("--sigterms", type=int, default=5, help="SIGTERM-and-restart rounds (5)")
    soak.add_argument("--fuzz", type=int, default=100_000, help="mutated messages")
    soak.add_argument("--seed", type=int, default=1, help="feed and fault seed (1)")
    soak.add_argument(
        "--broker",
        choices=("tansu", "kafka"),
        default="tansu",
        help="the broker behind the proxy for the single-broker scenarios: tansu (embedded) "
        "or kafka (one Apache Kafka node); the kafka-* scenarios always use three nodes",
    )
    soak.add_argument("--only", nargs="+", choices=SCENARIOS, help="run only these")
    soak.add_argument("--workdir", type=Path, help="keep logs and pages files here")
    soak.add_argument("--report", type=Path, help="also write the Markdown table here")


def handle(args: argparse.Namespace, settings: Settings) -> int:
    # Imported here to keep the CLI's start-up light: the soak tools are only for this command.
    from service.tools import soak

    logging.getLogger("service").setLevel(logging.ERROR)  # the fuzz run dead-letters a lot
    # The harness's own Kafka clients meet the nodes it kills: expected, and not the verdict.
    logging.getLogger("aiokafka").setLevel(logging.CRITICAL)
    wanted = set(args.only or SCENARIOS)
    workdir = args.workdir or Path(tempfile.mkdtemp(prefix="labsentinel-soak-"))
    workdir.mkdir(parents=True, exist_ok=True)
    rows: list[dict[str, Any]] = []
    pg = soak.PrivatePostgres().init()
    broker = soak.ProxiedBroker(args.broker).start()
    n = args.messages
    try:

        def db(name: str) -> str:
            return pg.create_database(f"soak_{name}_{int(time.time())}")

        runs: list[tuple[str, Callable[[], soak.ScenarioResult]]] = [
            (
                "sigkill",
                lambda: soak.scenario_sigkill(
                    broker=broker,
                    database_url=db("kill"),
                    workdir=workdir / "sigkill",
                    kills=args.kills,
                    messages=n,
                    seed=args.seed,
                    timeout_s=900,
                ),
            ),
            (
                "outage",
                lambda: soak.scenario_database_outage(
                    broker=broker,
                    pg=pg,
                    workdir=workdir / "outage",
                    outage_s=args.outage_s,
                    messages=n,
                    seed=args.seed + 1,
                    timeout_s=600,
                ),
            ),
            (
                "broker",
                lambda: soak.scenario_broker_cut(
                    broker=broker,
                    database_url=db("cut"),
                    workdir=workdir / "broker",
                    cut_s=args.broker_cut_s,
                    messages=n,
                    seed=args.seed + 2,
                    timeout_s=600,
                ),
            ),
            (
                "pager",
                lambda: soak.scenario_flaky_pager(
                    broker=broker,
                    database_url=db("pager"),
                    workdir=workdir / "pager",
                    failures=args.pager_failures,
                    messages=n,
                    planted=24,
                    seed=args.seed + 3,
                    timeout_s=600,
                ),
            ),
            (
                "instances",
                lambda: soak.scenario_two_instances(
                    broker=broker,
                    database_url=db("two"),
                    workdir=workdir / "instances",
                    messages=n,
                    seed=args.seed + 4,
                    timeout_s=600,
                ),
            ),
            (
                "sigterm",
                lambda: soak.scenario_sigterm_burst(
                    broker=broker,
                    database_url=db("term"),
                    workdir=workdir / "sigterm",
                    stops=args.sigterms,
                    messages=n,
                    seed=args.seed + 5,
                    timeout_s=600,
                ),
            ),
        ]
        rows += _run_wanted(runs, wanted)
        if wanted & set(KAFKA_SCENARIOS):
            rows += _kafka_rows(wanted, db, workdir, messages=n, seed=args.seed)
    finally:
        broker.stop()
        pg.destroy()
    if "fuzz" in wanted:
        report = soak.fuzz_pipeline(
            args.fuzz, seed=args.seed, database_url=f"sqlite:///{workdir / 'fuzz.db'}"
        )
        row = {
            "fault": "mutated / malformed HL7 through the pipeline (SQLite)",
            "injected": report.inputs,
            "messages": sum(report.outcomes.values()),
            "planted": report.planted,
            "paged": report.paged,
            "lost": report.planted - report.paged,
            "duplicated": 0,
            "dead_letters": report.dead_letter_rows,
            "outcomes": dict(report.outcomes),
            "seconds": round(report.seconds, 1),
            "ok": report.ok,
            "notes": "; ".join(report.problems[:3]),
        }
        rows.append(row)
        print(json.dumps(row), flush=True)
    table = markdown_table(rows, command=_command(args))
    print(table)
    if args.report:
        args.report.write_text(table)
    print(f"logs and pages files: {workdir}")
    return 0 if all(r.get("ok") for r in rows) else 1


def _kafka_rows(
    wanted: set[str], db: Callable[[str], str], workdir: Path, *, messages: int, seed: int
) -> list[dict[str, Any]]:
    """The Apache Kafka scenarios, on a three-node cluster started for them."""
    from service.tools.kafka import ApacheKafka
    from service.tools.soak.kafka_scenarios import kafka_runs

    cluster = ApacheKafka(brokers=3)
    try:
        cluster.start()
    except (RuntimeError, OSError) as exc:
        cluster.stop()
        error = f"Apache Kafka did not start: {describe_exception(exc)}"
        return [
            {"fault": name, "ok": False, "error": error}
            for name in KAFKA_SCENARIOS
            if name in wanted
        ]
    try:
        return _run_wanted(kafka_runs(cluster, db, workdir, messages=messages, seed=seed), wanted)
    finally:
        cluster.stop()


def _run_wanted(
    runs: list[tuple[str, Callable[[], Any]]], wanted: set[str]
) -> list[dict[str, Any]]:
    """Run the wanted scenarios in order; each row is printed as it is known."""
    rows: list[dict[str, Any]] = []
    for name, scenario in runs:
        if name not in wanted:
            continue
        try:
            row = scenario().row()
        except Exception as exc:  # report and go on: one broken scenario is a finding
            row = {"fault": name, "ok": False, "error": describe_exception(exc)}
        rows.append(row)
        print(json.dumps(row), flush=True)
    return rows


def markdown_table(rows: list[dict[str, Any]], command: str) -> str:
    head = (
        "| fault | injected | messages processed | planted cases paged | lost | duplicated "
        "| seconds | result |\n|---|---:|---:|---:|---:|---:|---:|---|\n"
    )
    body = ""
    for r in rows:
        result = "pass" if r.get("ok") else f"FAIL {r.get('error', '')}".strip()
        body += (
            f"| {r['fault']} | {r.get('injected', '')} | {r.get('messages', '')} | "
            f"{r.get('paged', '')}/{r.get('planted', '')} | {r.get('lost', '')} | "
            f"{r.get('duplicated', '')} | {r.get('seconds', '')} | {result} |\n"
        )
    return head + body + f"\nReproduce: `{command}`\n"


def _command(args: argparse.Namespace) -> str:
    return (
        f"labsentinel soak --kills {args.kills} --messages {args.messages} "
        f"--outage-s {args.outage_s:g} --broker-cut-s {args.broker_cut_s:g} "
        f"--pager-failures {args.pager_failures} --sigterms {args.sigterms} "
        f"--fuzz {args.fuzz} --seed {args.seed}"
        + (f" --broker {args.broker}" if args.broker != "tansu" else "")
        + (f" --only {' '.join(args.only)}" if args.only else "")
    )
