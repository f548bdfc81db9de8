"""A throw-away PostgreSQL cluster that a fault scenario may stop and start.

The shared server at :5432 is never touched: the cluster lives in a temp dir on a free port.
Blocking; not for use inside an event loop.
"""

from __future__ import annotations

import contextlib
import glob
import os
import shutil
import socket
import subprocess
import tempfile
from pathlib import Path

from sqlalchemy import create_engine, text
from sqlalchemy.pool import NullPool

from service.tools.broker import free_port


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
        """Run one server binary; raises RuntimeError when it fails. Blocks (up to 120 s)."""
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
        """Start the server and wait until it accepts connections (``pg_ctl -w``)."""
        options = (
            f"-p {self.port} -k {self.root} -c listen_addresses=127.0.0.1 "
            "-c fsync=off -c max_connections=200"
        )
        log = str(self.root / "server.log")
        self._run("pg_ctl", "-D", str(self.data), "-o", options, "-l", log, "-w", "start")
        return self

    def stop(self) -> None:
        """Stop the server (fast shutdown: open connections are cut) and wait for it."""
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
        """Create an empty database in the cluster; returns its URL."""
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
