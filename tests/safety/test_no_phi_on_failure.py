"""Failures say what failed in one PHI-free sentence: no traceback, no SQL text or values."""

from __future__ import annotations

import io
import json
import logging
import os
import subprocess
import sys
from pathlib import Path

import pytest
from sqlalchemy import text
from sqlalchemy.exc import SQLAlchemyError

from service.db.engine import make_engine
from service.runtime import logs
from tests.safety.hostile import hostile_oru

ROOT = Path(__file__).resolve().parents[2]
SECRET = "SECRETGIVEN-19411111"


def failing_statement(database_url: str) -> SQLAlchemyError:
    """A real driver error whose statement carried SECRET as a parameter."""
    engine = make_engine(database_url)
    try:
        with engine.connect() as connection:
            connection.execute(text("SELECT CAST(:v AS INTEGER) FROM no_such_table"), {"v": SECRET})
    except SQLAlchemyError as exc:
        return exc
    finally:
        engine.dispose()
    raise AssertionError("the statement should have failed")


def test_engine_errors_never_quote_statement_parameters(database_url: str) -> None:
    assert SECRET not in str(failing_statement(database_url))


def test_logged_exceptions_carry_class_and_safe_summary_only(database_url: str) -> None:
    exc = failing_statement(database_url)
    for formatter in (logs.JsonFormatter(), logs.TextFormatter()):
        stream = io.StringIO()
        handler = logging.StreamHandler(stream)
        handler.setFormatter(formatter)
        logger = logging.getLogger("tests.safety.phi")
        logger.addHandler(handler)
        try:
            try:
                raise RuntimeError(f"wrapped {SECRET}") from exc
            except RuntimeError:
                logger.exception("Task failed\nfuture: <Task exception=%s>", SECRET)
        finally:
            logger.removeHandler(handler)
        out = stream.getvalue()
        assert SECRET not in out and "Traceback" not in out and "RuntimeError" in out
    line = json.loads(out_json(exc))
    assert line["exc_type"] == type(exc).__name__ and line["exc"] == type(exc).__name__


def out_json(exc: BaseException) -> str:
    record = logging.LogRecord("x", logging.ERROR, __file__, 1, "failed", None,
                               (type(exc), exc, exc.__traceback__))  # fmt: skip
    return logs.JsonFormatter().format(record)


@pytest.mark.slow
def test_unexpected_cli_failure_is_one_sentence_and_exit_1(tmp_path: Path) -> None:
    feed = tmp_path / "one.hl7"
    feed.write_bytes(hostile_oru() + b"\r")
    blocker = tmp_path / "a-file"
    blocker.write_text("")  # the database's folder cannot be created under a file
    done = subprocess.run(
        [sys.executable, "-m", "service.cli.main", "replay", str(feed), "--database-url",
         f"sqlite:///{blocker / 'x.db'}"],
        capture_output=True, text=True, timeout=120, cwd=ROOT, env=dict(os.environ),
    )  # fmt: skip
    assert done.returncode == 1
    assert "Traceback" not in done.stderr and "HOSTILEFAMILY" not in done.stderr
    assert done.stderr.strip().splitlines()[-1].startswith("labsentinel: replay failed: ")
