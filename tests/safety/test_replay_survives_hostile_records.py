"""`labsentinel replay` survives each hostile record, on SQLite and PostgreSQL.

Each test replays a file holding the hostile record FIRST and then a planted interaction case
of another patient, through the real command (a subprocess, as an operator runs it), and
checks that: the command exits 0; the planted case pages (high or critical); the hostile
record has an outcome (a dead-letter row with a reason where its content is unusable; a
record that text hygiene makes usable may instead be stored); and no output carries a
traceback, SQL text or parameters, or a patient's name or birth date.
"""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path

import pytest
from sqlalchemy import create_engine, text

from service.db.engine import normalise_url
from tests.safety.hostile import (
    FORBIDDEN_ON_OUTPUT,
    PLANTED_MRN,
    feed_file,
    hostile_oru,
    hostile_rde,
    only_msh,
    planted_case,
)

pytestmark = pytest.mark.slow  # each test runs `labsentinel replay` as a subprocess

ROOT = Path(__file__).resolve().parents[2]
SUMMARY = re.compile(
    r"replay: (\d+) messages \((\d+) stored, (\d+) ignored, (\d+) duplicate, "
    r"(\d+) dead-lettered\)"
)
SMALL_LIMIT = 4096  # bytes; the size test replays with this limit


@dataclass
class Replayed:
    returncode: int
    stdout: str
    stderr: str
    pages: list[dict]  # type: ignore[type-arg]
    dead_letters: list[tuple[str, str]]  # (error_class, reason) of the hostile record's rows
    stored: int
    ignored: int
    dead_lettered: int


def replay(
    tmp_path: Path, database_url: str, hostile: bytes, env: dict[str, str] | None = None
) -> Replayed:
    feed = tmp_path / "hostile.hl7"
    feed.write_bytes(feed_file(hostile, planted_case()))
    pages = tmp_path / "pages.jsonl"
    done = subprocess.run(
        [sys.executable, "-m", "service.cli.main", "replay", str(feed),
         "--database-url", database_url, "--pages-out", str(pages)],
        capture_output=True, text=True, timeout=180, cwd=ROOT,
        env={**os.environ, **(env or {})},
    )  # fmt: skip
    lines = pages.read_text().splitlines() if pages.exists() else []
    engine = create_engine(normalise_url(database_url))
    try:
        with engine.connect() as connection:
            rows = connection.execute(
                text(
                    'SELECT error_class, reason FROM dead_letters WHERE topic = :t AND "offset" = 0'
                ),
                {"t": feed.name},
            ).all()
    finally:
        engine.dispose()
    found = SUMMARY.search(done.stdout)
    counts = [int(n) for n in found.groups()] if found else [0] * 5
    return Replayed(
        done.returncode, done.stdout, done.stderr,
        [json.loads(line) for line in lines if line.strip()],
        [(r.error_class, r.reason) for r in rows],
        stored=counts[1], ignored=counts[2], dead_lettered=counts[4],
    )  # fmt: skip


def assert_survived(run: Replayed, *, dead_lettered: bool) -> None:
    """The four promises of every test here (see the module docstring)."""
    output = run.stdout + run.stderr
    assert run.returncode == 0, output[-2000:]
    alerts = [
        p for p in run.pages
        if p["event"] == "alert" and p["patient"]["id"] == PLANTED_MRN
        and p["analyte"] == "phosphate"
    ]  # fmt: skip
    assert alerts and alerts[0]["severity"] in ("high", "critical"), run.pages
    # Every message of the file has an outcome: the 3 of the planted case are stored.
    assert run.stored + run.ignored + run.dead_lettered == 4, run.stdout
    if dead_lettered:
        assert run.dead_letters, "the hostile record is not in the dead-letter table"
    else:
        assert run.dead_letters or run.stored + run.ignored == 4, run.stdout
    for error_class, reason in run.dead_letters:
        assert error_class and reason.strip()
    for forbidden in FORBIDDEN_ON_OUTPUT:
        assert forbidden not in output, f"{forbidden!r} on the output"


def test_nul_in_msh10_of_a_relevant_oru_does_not_stop_replay(database_url, tmp_path):
    run = replay(tmp_path, database_url, hostile_oru(control_id=b"HOST\x00ORU"))
    assert_survived(run, dead_lettered=False)


def test_control_characters_in_patient_identifier_do_not_stop_replay(database_url, tmp_path):
    pid3 = b"HX\x00\x01\x1b0001\x7f^^^GH^MR"
    run = replay(tmp_path, database_url, hostile_oru(pid3=pid3))
    assert_survived(run, dead_lettered=False)


def test_nul_and_controls_in_a_phosphate_value_dead_letter_it(database_url, tmp_path):
    run = replay(tmp_path, database_url, hostile_oru(obx5=b"1\x00.\x074"))
    assert_survived(run, dead_lettered=True)


def test_nul_and_controls_in_a_phosphate_unit_dead_letter_it(database_url, tmp_path):
    run = replay(tmp_path, database_url, hostile_oru(obx6=b"mg\x00/d\x1fL\x85"))
    assert_survived(run, dead_lettered=True)


def test_nul_and_controls_in_the_drug_text_do_not_stop_replay(database_url, tmp_path):
    rxe2 = b"1435169^Ferric\x00 carboxy\x08maltose\x1b[31m^RXNORM"
    run = replay(tmp_path, database_url, hostile_rde(rxe2=rxe2))
    assert_survived(run, dead_lettered=False)


def test_invalid_utf8_in_patient_name_does_not_stop_replay(database_url, tmp_path):
    name = b"HOSTILEFAMILY\xff\x80^SECRETGIVEN\xc3"  # a lone lead byte, lone continuations
    run = replay(tmp_path, database_url, hostile_oru(name=name))
    assert_survived(run, dead_lettered=False)


def test_invalid_utf8_in_a_phosphate_value_dead_letters_it(database_url, tmp_path):
    run = replay(tmp_path, database_url, hostile_oru(obx5=b"1.\x80\xbf2"))
    assert_survived(run, dead_lettered=True)


def test_noncharacters_and_bidi_overrides_in_location_do_not_stop_replay(database_url, tmp_path):
    pv13 = "4W\ufffe^101\uffff^A\u202e^GH\u202d".encode()
    run = replay(tmp_path, database_url, hostile_oru(pv13=pv13))
    assert_survived(run, dead_lettered=False)


def test_record_over_the_size_limit_is_dead_lettered(database_url, tmp_path):
    big = hostile_oru(padding=b"X" * (5 * SMALL_LIMIT))
    env = {"LABSENTINEL_KAFKA_MAX_MESSAGE_BYTES": str(SMALL_LIMIT)}
    run = replay(tmp_path, database_url, big, env=env)
    assert_survived(run, dead_lettered=True)


def test_pharmacy_order_with_a_300_character_control_id_does_not_stop_replay(
    database_url, tmp_path
):
    run = replay(tmp_path, database_url, hostile_rde(control_id=b"C" * 300))
    assert_survived(run, dead_lettered=False)


def test_message_of_only_an_msh_is_dead_lettered(database_url, tmp_path):
    run = replay(tmp_path, database_url, only_msh())
    assert_survived(run, dead_lettered=True)
