"""`labsentinel escalations run --at … --dry-run`: a rehearsal that pages nobody and writes
nothing; and a real run refuses a time in the future (it would stamp the future on alerts)."""

from __future__ import annotations

import hashlib
from datetime import timedelta
from pathlib import Path

import pytest
from sqlalchemy import MetaData, create_engine, select

from service.cli.main import main
from service.db.engine import normalise_url
from tests.api.story import build_story


def database_digest(url: str) -> dict[str, str]:
    """Every table's rows (sorted) hashed: any insert, update or delete changes a digest."""
    engine = create_engine(normalise_url(url))
    try:
        metadata = MetaData()
        metadata.reflect(engine)
        digests = {}
        with engine.connect() as connection:
            for name, table in sorted(metadata.tables.items()):
                rows = sorted(repr(tuple(r)) for r in connection.execute(select(table)))
                digests[name] = (
                    f"{len(rows)}:" + hashlib.sha256("\n".join(rows).encode()).hexdigest()
                )
        return digests
    finally:
        engine.dispose()


@pytest.fixture
def paged(database_url: str, tmp_path: Path) -> tuple[str, int, str]:
    """A database with one open, paged, unacknowledged alert (shipped routing, console)."""
    story = build_story(database_url, tmp_path)
    alert = story.alert()
    story.app.close()
    assert alert is not None and alert.escalation_state == "active"
    future = (story.now + timedelta(days=3)).isoformat()
    return database_url, alert.id or 0, future


def test_dry_run_prints_the_step_and_changes_nothing(
    paged: tuple[str, int, str], capsys: pytest.CaptureFixture[str]
) -> None:
    url, alert_id, future = paged
    before = database_digest(url)
    assert main(["escalations", "run", "--at", future, "--dry-run", "--database-url", url]) == 0
    out = capsys.readouterr().out
    line = next(x for x in out.splitlines() if f"alert {alert_id} " in x)
    # Tier 1 was paged and nobody acknowledged: tier 2 of the routed team, over its channel.
    assert "escalate" in line and "tier 2" in line and "team=" in line and "console=" in line
    assert "nothing is paged or written" in out
    assert database_digest(url) == before


def test_real_run_refuses_a_future_time_and_writes_nothing(
    paged: tuple[str, int, str], capsys: pytest.CaptureFixture[str]
) -> None:
    url, _alert_id, future = paged
    before = database_digest(url)
    assert main(["escalations", "run", "--at", future, "--database-url", url]) == 2
    err = capsys.readouterr().err.strip()
    assert "--dry-run" in err and len(err.splitlines()) == 1
    assert database_digest(url) == before
    # A rehearsal at now predicts the real run at now, and the digest sees the real steps.
    assert main(["escalations", "run", "--dry-run", "--database-url", url]) == 0
    predicted = capsys.readouterr().out.strip().splitlines()[-1].split()[0]
    assert int(predicted) >= 1 and database_digest(url) == before
    assert main(["escalations", "run", "--database-url", url]) == 0
    assert f"escalations: {predicted} steps" in capsys.readouterr().out
    assert database_digest(url) != before
