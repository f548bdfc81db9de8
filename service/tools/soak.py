"""Fault injection against the real daemon: machinery of the reliability suite and of soak.

Everything here drives a real ``labsentinel run`` process (``python -m service.cli.main run``)
against a real Tansu broker and a real PostgreSQL, and then audits what happened:

- ``PrivatePostgres``: a throw-away PostgreSQL cluster in a temp dir on a free port, which the
  outage scenario may stop and start (the shared server at :5432 is never touched).
- ``TcpProxy`` and ``ProxiedBroker``: Tansu advertising a proxy's address, so every Kafka
  connection of the daemon goes through a proxy that can cut them all (and refuse new ones).
- ``DaemonProcess``: one ``labsentinel run`` subprocess with its own ``--pages-out`` file and
  log file.
- ``Run``: one scenario's topics, consumer group, database and feed (with planted cases), plus
  ``wait_consumed`` (every record committed by the group, outbox empty) and ``audit`` (every
  planted case paged, nothing lost, repeated deliveries only with the same dedup key).

The scenarios (``scenario_*``: SIGKILL, database outage, broker cut, failing pager, two
instances, SIGTERM during a burst) and the pipeline fuzzer (``mutate``, ``fuzz_pipeline``) are
at the bottom, so the CI suite (tests/reliability and tests/fuzz, small numbers) and
`labsentinel soak` (large numbers) run exactly the same code. Blocking; not for use inside an
event loop.
"""

from __future__ import annotations

import asyncio
import contextlib
import glob
import json
import os
import re
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import threading
import time
import uuid
from collections import Counter
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

from sqlalchemy import create_engine, text
from sqlalchemy.engine import Engine
from sqlalchemy.pool import NullPool

from alerts.identity import split_patient_key
from service.tools.broker import EmbeddedBroker, free_port
from service.tools.feedgen import Feed, generate_feed

LABSENTINEL = [sys.executable, "-m", "service.cli.main"]
SESSION_TIMEOUT_MS = 6000  # the smallest a Kafka broker accepts by default


def _wait_port(port: int, timeout_s: float, process: subprocess.Popen[bytes] | None = None) -> None:
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        if process is not None and process.poll() is not None:
            raise RuntimeError(f"process exited with {process.returncode} before listening")
        try:
            socket.create_connection(("127.0.0.1", port), 0.2).close()
            return
        except OSError:
            time.sleep(0.05)
    raise RuntimeError(f"nothing listens on port {port} after {timeout_s} s")


# -- a private PostgreSQL cluster ------------------------------------------------------------


class PrivatePostgres:
    """A PostgreSQL cluster of our own in a temp dir: may be stopped without harming anyone.

    As root the server binaries run as the ``postgres`` OS user (they refuse to run as root).
    Raises RuntimeError when no PostgreSQL server binaries are installed.
    """

    def __init__(self, port: int | None = None) -> None:
        found = sorted(glob.glob("/usr/lib/postgresql/*/bin/initdb"))
        bindir = os.environ.get("LABSENTINEL_PG_BINDIR") or (
            str(Path(found[-1]).parent) if found else ""
        )
        if not bindir or not Path(bindir, "pg_ctl").exists():
            raise RuntimeError("PostgreSQL server binaries (initdb, pg_ctl) not found")
        self.bindir = Path(bindir)
        self.port = port or free_port()
        self.root = Path(tempfile.mkdtemp(prefix="labsentinel-pg-"))
        self.data = self.root / "data"
        self._as_postgres = os.geteuid() == 0
        if self._as_postgres:
            shutil.chown(self.root, "postgres", "postgres")
        self.stops = 0

    def _run(self, *args: str) -> None:
        command = [str(self.bindir / args[0]), *args[1:]]
        if self._as_postgres:
            command = ["runuser", "-u", "postgres", "--", *command]
        done = subprocess.run(command, capture_output=True, text=True, timeout=120)
        if done.returncode != 0:
            raise RuntimeError(f"{args[0]} failed: {done.stderr.strip()[-500:]}")

    def init(self) -> PrivatePostgres:
        self._run("initdb", "-D", str(self.data), "-U", "postgres", "--auth=trust", "-E", "UTF8")
        return self.start()

    def start(self) -> PrivatePostgres:
        options = (
            f"-p {self.port} -k {self.root} -c listen_addresses=127.0.0.1 "
            "-c fsync=off -c max_connections=200"
        )
        self._run("pg_ctl", "-D", str(self.data), "-o", options, "-l",
                  str(self.root / "server.log"), "-w", "start")  # fmt: skip
        return self

    def stop(self) -> None:
        self._run("pg_ctl", "-D", str(self.data), "-m", "fast", "-w", "stop")
        self.stops += 1

    def running(self) -> bool:
        try:
            socket.create_connection(("127.0.0.1", self.port), 0.5).close()
            return True
        except OSError:
            return False

    def url(self, database: str = "postgres") -> str:
        return f"postgresql+psycopg://postgres@127.0.0.1:{self.port}/{database}"

    def create_database(self, name: str) -> str:
        engine = create_engine(
            self.url(), isolation_level="AUTOCOMMIT", poolclass=NullPool, hide_parameters=True
        )
        with engine.connect() as connection:
            connection.execute(text(f'CREATE DATABASE "{name}"'))
        engine.dispose()
        return self.url(name)

    def destroy(self) -> None:
        if self.running():
            with contextlib.suppress(Exception):
                self.stop()
        shutil.rmtree(self.root, ignore_errors=True)


# -- a TCP proxy that can cut every connection -----------------------------------------------


class TcpProxy:
    """Forwards 127.0.0.1:``port`` to ``target``; ``cut()`` resets every connection and refuses
    new ones until ``restore()``. Runs its own event loop in a daemon thread."""

    def __init__(self, target_port: int = 0) -> None:
        self.target_port = target_port
        self.port = 0
        self.cut_active = False
        self.cuts = 0
        self._writers: set[asyncio.StreamWriter] = set()
        self._loop = asyncio.new_event_loop()
        self._server: asyncio.Server | None = None
        self._thread = threading.Thread(target=self._loop.run_forever, daemon=True)

    def start(self) -> TcpProxy:
        self._thread.start()
        future = asyncio.run_coroutine_threadsafe(self._listen(), self._loop)
        self.port = future.result(10)
        return self

    async def _listen(self) -> int:
        self._server = await asyncio.start_server(self._handle, "127.0.0.1", 0)
        return int(self._server.sockets[0].getsockname()[1])

    async def _handle(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        if self.cut_active:
            writer.transport.abort()
            return
        try:
            up_reader, up_writer = await asyncio.open_connection("127.0.0.1", self.target_port)
        except OSError:
            writer.transport.abort()
            return
        self._writers |= {writer, up_writer}

        async def pipe(src: asyncio.StreamReader, dst: asyncio.StreamWriter) -> None:
            try:
                while data := await src.read(65536):
                    dst.write(data)
                    await dst.drain()
            except (OSError, asyncio.CancelledError):
                pass
            finally:
                dst.transport.abort()

        await asyncio.gather(pipe(reader, up_writer), pipe(up_reader, writer))
        self._writers -= {writer, up_writer}

    def cut(self) -> None:
        def _cut() -> None:
            self.cut_active = True
            for writer in list(self._writers):
                writer.transport.abort()

        self._loop.call_soon_threadsafe(_cut)
        self.cuts += 1
        time.sleep(0.05)

    def restore(self) -> None:
        self._loop.call_soon_threadsafe(setattr, self, "cut_active", False)
        time.sleep(0.05)

    def close(self) -> None:
        if self._server is not None:
            self._loop.call_soon_threadsafe(self._server.close)
        self.cut()
        self._loop.call_soon_threadsafe(self._loop.stop)
        self._thread.join(5)


class ProxiedBroker:
    """Tansu (memory storage) whose advertised address is a ``TcpProxy`` in front of it, so
    that Kafka clients, which connect where metadata tells them, all go through the proxy."""

    def __init__(self) -> None:
        self.proxy = TcpProxy()
        self.broker: EmbeddedBroker | None = None
        self.tansu_port = 0

    @property
    def bootstrap_servers(self) -> str:
        return f"127.0.0.1:{self.proxy.port}"

    def start(self, timeout_s: float = 20.0) -> ProxiedBroker:
        self.proxy.start()
        self.broker = EmbeddedBroker(advertised_port=self.proxy.port)
        self.tansu_port = self.proxy.target_port = self.broker.port
        try:
            self.broker.start(timeout_s)
        except RuntimeError:
            self.stop()
            raise
        return self

    def stop(self) -> None:
        if self.broker is not None:
            self.broker.stop()
            self.broker = None
        self.proxy.close()


# -- the daemon under test -------------------------------------------------------------------


class DaemonProcess:
    """One ``labsentinel run`` process: its logs (stderr) appended to ``log_path``, its stdout
    (the console pager's output, when configured) to ``log_path`` + ``.stdout``."""

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
            try:
                return self.process.wait(timeout_s)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait()
        return int(self.process.returncode)

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


# -- one scenario's world: topics, group, database, feed -------------------------------------


@dataclass
class Audit:
    """What a scenario's end state says; ``ok`` is the pass/fail of the guarantees."""

    messages: int
    planted: int
    paged: int  # planted cases with an `alert` page
    lost: int  # planted cases not paged + notifications never delivered
    duplicated: int  # extra deliveries of an already delivered notification (same dedup key)
    doubled: int  # planted cases with more than one distinct `alert` notification
    unexpected: int  # alert pages for a patient/analyte that was not planted
    inconsistent_keys: int  # planted cases paged under more than one dedup key
    failed_deliveries: int
    dead_letters: int
    details: list[str] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        return (
            self.paged == self.planted
            and not self.lost
            and not self.doubled
            and not self.unexpected
            and not self.inconsistent_keys
            and not self.failed_deliveries
        )


@dataclass
class ScenarioResult:
    fault: str
    injected: int
    audit: Audit
    seconds: float
    notes: str = ""

    def row(self) -> dict[str, Any]:
        a = self.audit
        return {
            "fault": self.fault,
            "injected": self.injected,
            "messages": a.messages,
            "planted": a.planted,
            "paged": a.paged,
            "lost": a.lost,
            "duplicated": a.duplicated,
            "doubled": a.doubled,
            "dead_letters": a.dead_letters,
            "seconds": round(self.seconds, 1),
            "ok": a.ok,
            "notes": self.notes,
        }


def read_pages(paths: Sequence[Path]) -> tuple[list[dict[str, Any]], int]:
    """Every JSON line of every file, and how many lines were torn (not JSON)."""
    pages, torn = [], 0
    for path in paths:
        if not path.exists():
            continue
        for line in path.read_text(encoding="utf-8", errors="replace").splitlines():
            if not line.strip():
                continue
            try:
                pages.append(json.loads(line))
            except json.JSONDecodeError:
                torn += 1
    return pages, torn


class Run:
    """Topics, consumer group and database of one scenario, and its feed."""

    def __init__(
        self,
        broker: Any,
        database_url: str,
        workdir: Path,
        *,
        messages: int,
        planted: int = 6,
        seed: int = 7,
        keyed: bool = True,
        garbage: int = 5,
        partitions: int = 3,
    ) -> None:
        self.broker = broker
        self.database_url = database_url
        self.workdir = workdir
        workdir.mkdir(parents=True, exist_ok=True)
        self.unique = uuid.uuid4().hex[:10]
        self.topics = [f"oru-{self.unique}", f"rde-{self.unique}"]
        self.dead_letter_topic = f"dlq-{self.unique}"
        self.group = f"soak-{self.unique}"
        self.partitions = partitions
        start = (datetime.now(UTC) - timedelta(days=36)).replace(second=0, microsecond=0)
        self.feed: Feed = generate_feed(
            messages=messages,
            patients=max(200, messages // 8),
            planted=planted,
            seed=seed,
            start=start,
            garbage=garbage,
            keyed=keyed,
            oru_topic=self.topics[0],
            rde_topic=self.topics[1],
        )
        self.published = 0
        self.engine: Engine = create_engine(
            _psycopg(database_url),
            poolclass=NullPool,
            connect_args=_connect_args(database_url),
            hide_parameters=True,
        )
        self.daemons: list[DaemonProcess] = []

    # -- setup ------------------------------------------------------------------------------

    def env(self, **extra: str) -> dict[str, str]:
        env = {
            "LABSENTINEL_DATABASE_URL": self.database_url,
            "LABSENTINEL_KAFKA_BOOTSTRAP_SERVERS": self.broker.bootstrap_servers,
            "LABSENTINEL_KAFKA_GROUP_ID": self.group,
            "LABSENTINEL_KAFKA_TOPICS": json.dumps(self.topics),
            "LABSENTINEL_KAFKA_DEAD_LETTER_TOPIC": self.dead_letter_topic,
            "LABSENTINEL_KAFKA_SESSION_TIMEOUT_MS": str(SESSION_TIMEOUT_MS),
            "LABSENTINEL_KAFKA_FETCH_TIMEOUT_MS": "100",
            "LABSENTINEL_KAFKA_MAX_BATCH_RECORDS": "200",
            # The feed is five weeks old; with the wall clock its results would be backfill.
            "LABSENTINEL_CLINICAL_BACKFILL_DAYS": "365",
            "LABSENTINEL_API_PORT": "0",
            "LABSENTINEL_ROUTING_DEFAULT_CHANNELS": "[]",
            "LABSENTINEL_ROUTING_CONFIG": "",
            "LABSENTINEL_DISPATCHER_POLL_INTERVAL_S": "0.1",
            "LABSENTINEL_LOGGING_FORMAT": "json",
        }
        env.update(extra)
        return env

    def daemon(self, name: str = "a", config: Path | None = None, **env: str) -> DaemonProcess:
        process = DaemonProcess(
            self.env(**env),
            self.workdir / f"pages-{name}.jsonl",
            self.workdir / f"daemon-{name}.log",
            config,
        )
        self.daemons.append(process)
        return process

    def publish(self, upto: int | None = None) -> int:
        """Produce the feed's records ``published:upto`` (all remaining by default)."""
        from service.ingest.topics import ensure_topics, produce

        records = self.feed.records[self.published : upto]
        options = {"bootstrap_servers": self.broker.bootstrap_servers}

        async def go() -> int:
            if self.published == 0:
                await ensure_topics(
                    options, [*self.topics, self.dead_letter_topic], self.partitions
                )
            return await produce(options, ((r.topic, r.key, r.value) for r in records))

        self.published += asyncio.run(go())
        return self.published

    # -- progress ---------------------------------------------------------------------------

    def committed(self) -> int | None:
        """Records committed by the group (sum over partitions); None if Kafka is unreachable."""
        from aiokafka import AIOKafkaConsumer, TopicPartition

        async def go() -> int:
            # A consumer that never subscribes does not join the group; it only reads the
            # group's committed offsets (Tansu does not answer the admin client's variant).
            consumer = AIOKafkaConsumer(
                bootstrap_servers=self.broker.bootstrap_servers,
                group_id=self.group,
                enable_auto_commit=False,
                request_timeout_ms=5000,
            )
            await consumer.start()
            try:
                total = 0
                for topic in self.topics:
                    for partition in range(self.partitions):
                        offset = await consumer.committed(TopicPartition(topic, partition))
                        total += max(offset or 0, 0)
                return total
            finally:
                await consumer.stop()

        try:
            return asyncio.run(asyncio.wait_for(go(), 10))
        except Exception:
            return None

    def pending_outbox(self) -> int | None:
        try:
            with self.engine.connect() as connection:
                return int(
                    connection.execute(
                        text("SELECT count(*) FROM outbox WHERE status = 'pending'")
                    ).scalar_one()
                )
        except Exception:
            return None

    def wait_consumed(self, timeout_s: float, *, alive: Sequence[DaemonProcess] = ()) -> float:
        """Block until the group has committed every published record and the outbox is
        empty; returns the seconds waited. Raises TimeoutError (or RuntimeError if a daemon
        in ``alive`` exits)."""
        started = time.monotonic()
        while True:
            if self.committed() == self.published and self.pending_outbox() == 0:
                return time.monotonic() - started
            for process in alive:
                if not process.alive:
                    raise RuntimeError(f"daemon exited early; see {process.log_path}")
            if time.monotonic() - started > timeout_s:
                raise TimeoutError(
                    f"committed {self.committed()}/{self.published}, "
                    f"outbox pending {self.pending_outbox()} after {timeout_s} s"
                )
            time.sleep(0.3)

    def stop_all(self) -> None:
        for process in self.daemons:
            if process.alive:
                process.terminate(20)

    # -- the verdict ------------------------------------------------------------------------

    def audit(self, channel: str = "pages-out") -> Audit:
        pages, torn = read_pages([d.pages_out for d in self.daemons])
        with self.engine.connect() as connection:
            notifications = connection.execute(
                text("SELECT notification_id, dedup_key FROM notifications")
            ).all()
            outbox = connection.execute(
                text("SELECT id, notification_id, status FROM outbox WHERE channel = :c"),
                {"c": channel},
            ).all()
            delivered: dict[int, int] = dict(
                connection.execute(
                    text(
                        "SELECT outbox_id, count(*) FROM delivery_attempts "
                        "WHERE outcome = 'delivered' GROUP BY outbox_id"
                    )
                ).all()
            )
            failed = connection.execute(
                text("SELECT count(*) FROM outbox WHERE status = 'failed'")
            ).scalar_one()
            dead = connection.execute(text("SELECT count(*) FROM dead_letters")).scalar_one()
        planted = {(c.patient_id, c.analyte) for c in self.feed.planted}
        alerts = [p for p in pages if p.get("event") == "alert"]
        by_case: dict[tuple[str, str], set[str]] = {}
        keys_by_case: dict[tuple[str, str], set[str]] = {}
        for page in alerts:
            case = (page["patient"]["id"], page["analyte"])
            by_case.setdefault(case, set()).add(page["notification_id"])
            keys_by_case.setdefault(case, set()).add(page["dedup_key"])
        line_counts = Counter(p.get("notification_id") for p in pages)
        page_ids = set(line_counts)
        db_keys: dict[str, str] = dict(notifications)  # type: ignore[arg-type]
        channel_ids = {row.notification_id for row in outbox}
        undelivered = channel_ids - page_ids
        unsent = [row for row in outbox if row.status != "sent"]
        details = []
        missing = planted - set(by_case)
        if missing:
            details.append(f"planted cases never paged: {sorted(missing)}")
        if undelivered:
            details.append(
                f"notifications in the database but in no pages file: {len(undelivered)}"
            )
        if unsent:
            details.append(f"outbox rows not sent: {[(r.id, r.status) for r in unsent][:10]}")
        if torn:
            details.append(f"torn lines in pages files: {torn}")
        wrong_key = [
            p for p in pages if db_keys.get(str(p.get("notification_id"))) != p.get("dedup_key")
        ]
        if wrong_key:
            details.append(f"pages whose dedup_key differs from the database: {len(wrong_key)}")
        duplicated = sum(n - 1 for n in line_counts.values() if n > 1)
        duplicated += sum(n - 1 for n in delivered.values() if n > 1)
        return Audit(
            messages=self.published,
            planted=len(planted),
            paged=len(planted & set(by_case)),
            lost=len(missing) + len(undelivered | {r.notification_id for r in unsent}),
            duplicated=duplicated,
            doubled=sum(1 for case in planted if len(by_case.get(case, ())) > 1),
            unexpected=len(set(by_case) - planted),
            inconsistent_keys=sum(1 for keys in keys_by_case.values() if len(keys) > 1)
            + len(wrong_key),
            failed_deliveries=int(failed),
            dead_letters=int(dead),
            details=details,
        )

    def close(self) -> None:
        for process in self.daemons:
            if process.alive:
                process.kill()
        self.engine.dispose()


def _psycopg(url: str) -> str:
    return url.replace("postgresql://", "postgresql+psycopg://", 1)


def _connect_args(url: str) -> dict[str, Any]:
    return {"connect_timeout": 3} if url.startswith("postgres") else {}


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


# -- the fault scenarios ---------------------------------------------------------------------
# Each returns a ScenarioResult whose ``audit.ok`` says whether the guarantees held. They are
# deterministic for a seed except for scheduling; `labsentinel soak` runs them with larger
# numbers than CI.


def _wait_progress(run: Run, above: int, timeout_s: float, process: DaemonProcess) -> int:
    """Block until the group's committed count exceeds ``above`` (the daemon is consuming)."""
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        committed = run.committed() or 0
        if committed > above:
            return committed
        if not process.alive:
            raise RuntimeError(f"daemon exited; see {process.log_path}")
        time.sleep(0.1)
    raise TimeoutError(f"no progress beyond {above} committed records in {timeout_s} s")


def _finish(run: Run, timeout_s: float, fault: str, injected: int, started: float,
            notes: str = "", *alive: DaemonProcess) -> ScenarioResult:  # fmt: skip
    run.wait_consumed(timeout_s, alive=alive)
    run.stop_all()
    return ScenarioResult(fault, injected, run.audit(), time.monotonic() - started, notes)


def scenario_sigkill(
    broker: Any, database_url: str, workdir: Path, *, kills: int = 10, messages: int = 3000,
    seed: int = 1, timeout_s: float = 180.0,
) -> ScenarioResult:  # fmt: skip
    """SIGKILL the daemon ``kills`` times at random moments, restart it each time.

    The feed is published in ``kills + 1`` slices, one before each start, so that most kills
    land while a batch is in flight; one kill in four lands during start-up instead (imports,
    migrations, group join).
    """
    import random

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
                time.sleep(rng.uniform(0.2, 3.0))
                startup_kills += 1
            else:
                _wait_progress(run, before, 60, daemon)
                time.sleep(rng.uniform(0.0, 0.4))
            daemon.kill()
        run.publish()
        daemon.start()
        fault = "SIGKILL of the daemon at random moments, then restart"
        notes = f"{startup_kills} during start-up"
        return _finish(run, timeout_s, fault, daemon.kills, started, notes, daemon)
    finally:
        run.close()


def scenario_database_outage(
    broker: Any, pg: PrivatePostgres, workdir: Path, *, outage_s: float = 20.0,
    messages: int = 3000, seed: int = 2, timeout_s: float = 120.0,
) -> ScenarioResult:  # fmt: skip
    """Stop PostgreSQL for ``outage_s`` mid-run, then start it: pause, not-ready, resume.

    ``pg`` must be a private cluster (it is really stopped). The database is restarted in a
    ``finally`` whatever happens.
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
        _wait_progress(run, 0, 60, daemon)
        pg.stop()
        try:
            run.publish()  # the rest arrives while the database is down
            time.sleep(min(3.0, outage_s / 2))
            if port is not None:
                status = _http_status(f"http://127.0.0.1:{port}/readyz")
                notes.append(f"/readyz during outage: {status}")
                if status != 503:
                    raise AssertionError(f"/readyz answered {status} during the outage")
            if not daemon.alive:
                raise RuntimeError("the daemon exited during the database outage")
            time.sleep(max(0.0, outage_s - min(3.0, outage_s / 2)))
        finally:
            pg.start()
        log = daemon.log_path.read_text(errors="replace")
        if "consumption paused" not in log:
            raise AssertionError("the consumer never reported pausing for the outage")
        run.wait_consumed(timeout_s, alive=[daemon])
        if port is not None:
            status = _http_status(f"http://127.0.0.1:{port}/readyz")
            notes.append(f"after: {status}")
        run.stop_all()
        return ScenarioResult(f"PostgreSQL stopped for {outage_s:g} s mid-run", 1, run.audit(),
                              time.monotonic() - started, "; ".join(notes))  # fmt: skip
    finally:
        run.close()


def _http_status(url: str) -> int:
    import httpx

    try:
        return httpx.get(url, timeout=5).status_code
    except httpx.HTTPError:
        return 0


def scenario_broker_cut(
    broker: ProxiedBroker, database_url: str, workdir: Path, *, cut_s: float = 30.0,
    messages: int = 3000, seed: int = 3, timeout_s: float = 120.0,
) -> ScenarioResult:  # fmt: skip
    """Cut every Kafka connection (and refuse new ones) for ``cut_s`` mid-run; reconnect."""
    started = time.monotonic()
    run = Run(broker, database_url, workdir, messages=messages, seed=seed)
    two_thirds = 2 * len(run.feed.records) // 3
    run.publish(two_thirds)
    daemon = run.daemon()
    try:
        daemon.start()
        _wait_progress(run, 0, 60, daemon)
        broker.proxy.cut()
        try:
            time.sleep(cut_s)
            alive = daemon.alive
        finally:
            broker.proxy.restore()
        notes = "daemon stayed up" if alive else "daemon exited during the cut; restarted"
        if not alive:
            daemon.start()
        run.publish()  # and new records after the reconnection
        return _finish(run, timeout_s, f"Kafka connections cut for {cut_s:g} s (TCP proxy)",
                       1, started, notes, daemon)  # fmt: skip
    finally:
        run.close()


def scenario_two_instances(
    broker: Any, database_url: str, workdir: Path, *, messages: int = 3000, seed: int = 5,
    timeout_s: float = 120.0,
) -> ScenarioResult:  # fmt: skip
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
        return _finish(run, timeout_s, "two instances in one group, topics not keyed", 2,
                       started, "", a, b)  # fmt: skip
    finally:
        run.close()


def scenario_sigterm_burst(
    broker: Any, database_url: str, workdir: Path, *, stops: int = 3, messages: int = 3000,
    seed: int = 6, timeout_s: float = 120.0, max_shutdown_s: float = 20.0,
) -> ScenarioResult:  # fmt: skip
    """SIGTERM while a burst is being consumed (``stops`` times); each stop must exit 0 within
    ``max_shutdown_s``; the restarted daemon re-reads whatever was not committed."""
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
            _wait_progress(run, before, 60, daemon)
            t0 = time.monotonic()
            status = daemon.terminate(max_shutdown_s)
            slowest = max(slowest, time.monotonic() - t0)
            if status != 0:
                raise AssertionError(f"SIGTERM: exit status {status}; see {daemon.log_path}")
        run.publish()
        daemon.start()
        return _finish(run, timeout_s, "SIGTERM during a burst, then restart", stops, started,
                       f"slowest shutdown {slowest:.1f} s", daemon)  # fmt: skip
    finally:
        run.close()


class FlakyWebhook:
    """A local HTTP receiver that fails every other request (a 5xx, or a stall past the
    client's timeout) until it has failed ``failures`` of them, then answers 200. Records
    what it accepted.

    The fault is counted, never timed: a loaded machine that is slow to start the daemon
    cannot end a time window before the first request, and so cannot make the scenario pass
    without a fault having been injected."""

    def __init__(self, failures: int, stall_s: float = 2.0) -> None:
        from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

        self.to_fail = failures
        self.stall_s = stall_s
        self.requests = 0
        self.failed = Counter[str]()
        self.accepted: list[tuple[str, str]] = []  # (idempotency key, dedup key)
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
                            self.headers.get("X-LabSentinel-Dedup-Key", ""),
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
    from service.runtime.settings import default_config_path

    shipped = default_config_path().read_text()
    path = workdir / "labsentinel-webhook.toml"
    path.write_text(
        shipped + f'\n[channels.hook]\ntype = "webhook"\nurl = "{url}"\ntimeout_s = {timeout_s}\n'
    )
    return path


def scenario_flaky_pager(
    broker: Any, database_url: str, workdir: Path, *, failures: int = 10,
    messages: int = 2000, planted: int = 12, seed: int = 4, timeout_s: float = 120.0,
) -> ScenarioResult:  # fmt: skip
    """The webhook pager fails every other request (503s and stalls past the timeout) until
    it has failed ``failures`` of them; every notification still reaches it, repeats only
    with the same key."""
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
        result = _finish(run, timeout_s, "", 0, started, "", daemon)
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
        failures = sum(hook.failed.values())
        return ScenarioResult(
            f"webhook pager failing every other request, {failures} failures (503 and timeouts)",
            failures, audit, time.monotonic() - started,
            f"{hook.failed['5xx']} × 503, {hook.failed['timeout']} × timeout; "
            f"{len(hook_ids)} webhook deliveries",
        )  # fmt: skip
    finally:
        run.close()
        hook.close()


# -- bad input: mutation fuzzing of the whole pipeline ---------------------------------------

_BOGUS_DATES = (b"20251399", b"00000000", b"99991231235959", b"2025-01-01", b"", b"2",
                b"20250229", b"202501011261", b"19000101000000+9999", b"-1")  # fmt: skip
_BOGUS_VALUES = (b"abc", b"NaN", b"inf", b"-0", b"1e309", b"99999999999999999999999", b"<",
                 b">=", b"1.2.3", b"\xff\xfe", b"0x10", b"", b"^^^", b"1,5")  # fmt: skip
_BOGUS_UNITS = (b"furlongs", b"mg/dl/", b"", b"MMOL", b"\xb5mol/L", b"mg%", b"g/L", b"??")


def mutate(raw: bytes, rng: Any) -> bytes:
    """One random corruption of an HL7 message (pure; ``rng`` is a random.Random)."""
    segments = raw.split(b"\r")
    kind = rng.randrange(16)
    if kind == 0:  # truncated anywhere
        return raw[: rng.randrange(len(raw) + 1)]
    if kind == 1:  # wrong separators
        a, b = rng.choice([(b"|", b"^"), (b"|", b","), (b"^", b"|"), (b"\r", b"\n"),
                           (b"\r", b""), (b"|", b"\t"), (b"~", b"|")])  # fmt: skip
        return raw.replace(a, b)
    if kind == 2:  # binary junk spliced in
        at = rng.randrange(len(raw) + 1)
        return raw[:at] + bytes(rng.randrange(256) for _ in range(rng.randrange(1, 64))) + raw[at:]
    if kind == 3:  # a 1 MB field
        fields = raw.split(b"|")
        fields[rng.randrange(len(fields))] = b"A" * 1_000_000
        return b"|".join(fields)
    if kind == 4:  # wrong types in OBX-5
        return re.sub(rb"(OBX\|[^|]*\|[^|]*\|[^|]*\|[^|]*\|)[^|]*", lambda m: m.group(1)
                      + rng.choice(_BOGUS_VALUES), raw, count=1)  # fmt: skip
    if kind == 5:  # bogus dates
        return re.sub(rb"\b\d{12,14}(?:[+-]\d{4})?\b", lambda m: rng.choice(_BOGUS_DATES), raw)
    if kind == 6:  # unknown units (OBX-6)
        return re.sub(rb"(OBX(?:\|[^|\r]*){5}\|)[^|\r]*", lambda m: m.group(1)
                      + rng.choice(_BOGUS_UNITS), raw)  # fmt: skip
    if kind == 7:  # enormous OBX counts
        obx = [s for s in segments if s.startswith(b"OBX")]
        if obx:
            return b"\r".join(segments + obx[:1] * rng.choice((500, 2000, 5000)))
        return raw * 50
    if kind == 8:  # a segment dropped
        if len(segments) > 1:
            del segments[rng.randrange(len(segments))]
        return b"\r".join(segments)
    if kind == 9:  # segments shuffled
        rng.shuffle(segments)
        return b"\r".join(segments)
    if kind == 10:  # bytes flipped
        data = bytearray(raw)
        for _ in range(rng.randrange(1, 12)):
            if data:
                data[rng.randrange(len(data))] = rng.randrange(256)
        return bytes(data)
    if kind == 11:  # other encodings, MLLP framing inside, NULs
        return rng.choice([raw.decode("latin-1").encode("utf-16"), b"\x0b" + raw + b"\x1c\r",
                           raw.replace(b"|", b"|\x00", 3), b"\x0b\x1c\r" * 3])  # fmt: skip
    if kind == 12:  # empty or blank
        return rng.choice([b"", b"\r\r\r", b"   ", b"MSH", b"MSH|", b"MSH|^~\\&"])
    if kind == 13:  # a field emptied or made huge in repetitions
        fields = raw.split(b"|")
        i = rng.randrange(len(fields))
        fields[i] = rng.choice([b"", b"~" * 1000, b"^" * 1000, b"\\" * 50, b"&&&&"])
        return b"|".join(fields)
    if kind == 14:  # escapes gone wrong
        return raw.replace(b"^", rng.choice([b"\\S\\", b"\\X0D\\", b"\\Z", b"\\"]), 5)
    # two mutations at once
    return mutate(mutate(raw, rng), rng)


@dataclass
class FuzzReport:
    inputs: int = 0
    outcomes: Counter[str] = field(default_factory=Counter)
    dead_letter_rows: int = 0
    planted: int = 0
    paged: int = 0
    problems: list[str] = field(default_factory=list)
    seconds: float = 0.0

    @property
    def ok(self) -> bool:
        return not self.problems and self.paged == self.planted


def fuzz_pipeline(
    count: int, *, seed: int = 0, database_url: str, batch: int = 100, good_every: int = 10
) -> FuzzReport:
    """Push ``count`` mutated messages through Pipeline.process_batch with good messages (a feed
    with planted cases) interleaved; check that nothing raises, that every dead letter is in
    the table with a reason and its offset, and that every planted case still pages.

    Mutants are made from background messages only (never a planted patient's), so a mutant
    cannot legitimately suppress a page.
    """
    import random

    from service.bootstrap import build_app
    from service.ingest.pipeline import Incoming, Outcome
    from service.runtime.clock import MessageClock
    from service.runtime.settings import load_settings

    started = time.monotonic()
    rng = random.Random(seed)
    report = FuzzReport()
    goods = max(200, count // good_every)
    feed = generate_feed(messages=goods, patients=max(60, goods // 5), planted=4, seed=seed + 1,
                         start=datetime(2025, 1, 6, tzinfo=UTC), garbage=0)  # fmt: skip
    planted_ids = [c.patient_id.encode() for c in feed.planted]
    sources = [r.value for r in feed.records
               if r.kind != "garbage" and not any(p in r.value for p in planted_ids)]  # fmt: skip
    good = list(feed.records)
    settings = load_settings(overrides={"database": {"url": database_url},
                                        "routing": {"default_channels": []}})  # fmt: skip
    app = build_app(settings, clock=MessageClock())
    offset = 0
    paged: set[tuple[str, str]] = set()
    try:
        pipeline = app.pipeline
        n_mutants = expected_rows = 0
        while n_mutants < count or good:
            items: list[Incoming] = []
            while len(items) < batch and (n_mutants < count or good):
                take_good = good and (n_mutants >= count or rng.random() < len(good) / max(
                    1, len(good) + count - n_mutants))  # fmt: skip
                if take_good:
                    raw = good.pop(0).value
                else:
                    raw = rng.choice(sources)
                    if rng.random() < 0.5:  # a fresh MSH-10, so that it is not a mere duplicate
                        raw = raw.replace(b"|P|2.5.1", b"X%d|P|2.5.1" % n_mutants, 1)
                    raw = mutate(raw, rng)
                    n_mutants += 1
                items.append(Incoming(raw, "kafka", "fuzz", 0, offset))
                offset += 1
            try:
                results = pipeline.process_batch(items)
            except Exception as exc:
                report.problems.append(f"process_batch raised {type(exc).__name__}: {exc!s:.200}")
                continue
            for item, result in zip(items, results, strict=True):
                report.outcomes[result.outcome.value] += 1
                # One row per dead-lettered message, plus one per item dead-lettered alone.
                expected_rows += (result.outcome is Outcome.DEAD_LETTER) + len(
                    result.item_dead_letters
                )
                if result.outcome is Outcome.DEAD_LETTER and not (
                    result.reason and result.error_class
                ):
                    report.problems.append(f"dead letter without a reason at {item.offset}")
                for n in result.notifications:
                    if n.event == "alert":
                        paged.add((split_patient_key(n.patient_id)[0], str(n.analyte)))
        report.inputs = n_mutants
        with app.engine.connect() as connection:
            rows = connection.execute(
                text('SELECT "offset", reason, error_class FROM dead_letters')
            ).all()
        report.dead_letter_rows = len(rows)
        if len(rows) != expected_rows:
            report.problems.append(
                f"{report.outcomes['dead_letter']} messages and their items dead-lettered "
                f"({expected_rows} rows expected), {len(rows)} rows in the table"
            )
        if any(not r.reason or not r.error_class or r.offset is None for r in rows):
            report.problems.append("dead-letter rows without reason, class or offset")
        planted = {(c.patient_id, c.analyte) for c in feed.planted}
        report.planted, report.paged = len(planted), len(planted & paged)
    finally:
        app.close()
    report.seconds = time.monotonic() - started
    return report
