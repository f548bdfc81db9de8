"""`labsentinel dlq list` with search keys and `dlq reprocess` by a search, on both databases."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
from sqlmodel import Session, select

from service.api.views import dead_letter_search
from service.cli import ops
from service.cli.main import main
from service.db.models import DeadLetter
from tests.api.story import Story, build_story, fixed_lab_catalog


@pytest.fixture
def story(database_url: str, tmp_path: Path) -> Iterator[Story]:
    built = build_story(database_url, tmp_path)
    try:
        yield built
    finally:
        built.app.close()


def _statuses(story: Story) -> list[str]:
    with Session(story.app.engine) as session:
        return [d.status for d in session.exec(select(DeadLetter).order_by(DeadLetter.id))]


def test_the_cli_knows_the_same_search_keys() -> None:
    assert ops.FILTER_KEYS == dead_letter_search.FILTER_KEYS


def test_dlq_list_filters_and_reprocess_by_search(
    story: Story, tmp_path: Path, capsys: pytest.CaptureFixture[str], monkeypatch
) -> None:
    url = story.settings.database.url
    assert main(["dlq", "list", "--database-url", url]) == 0
    out = capsys.readouterr().out
    assert "2 of 2 dead letters (by reason: " in out and "MSH|" not in out
    assert main(["dlq", "list", "--reason", "unit", "--database-url", url]) == 0
    assert "1 of 1 dead letters (by reason: unit 1)" in capsys.readouterr().out
    window = ["--since", "2000-01-01", "--until", "2100-01-01T00:00"]
    assert main(["dlq", "list", *window, "--database-url", url]) == 0
    assert "2 of 2 dead letters" in capsys.readouterr().out
    assert main(["dlq", "list", "--since", "2100-01-01", "--database-url", url]) == 0
    assert "0 of 0 dead letters" in capsys.readouterr().out
    assert main(["dlq", "list", "--message-type", "ORU", "--database-url", url]) == 0
    assert "1 of 1 dead letters" in capsys.readouterr().out
    assert main(["dlq", "list", "--reason", "typo", "--database-url", url]) == 2
    assert "reason: one of" in capsys.readouterr().err

    before = _statuses(story)
    args = ["dlq", "reprocess", "--filter", "reason=unit", "--dry-run", "--database-url", url]
    assert main(args) == 0
    assert "dry run: 1 would be reprocessed" in capsys.readouterr().out
    assert _statuses(story) == before
    assert main(["dlq", "reprocess", "--database-url", url]) == 2, "neither ids nor a search"
    capsys.readouterr()

    monkeypatch.setenv("LABSENTINEL_CLINICAL_LAB_CATALOG", str(fixed_lab_catalog(tmp_path)))
    assert main(["dlq", "reprocess", "--reason", "unit", "--database-url", url]) == 0
    assert "reprocessed 1: 1 stored or ignored" in capsys.readouterr().out
    assert main(["dlq", "reprocess", "--reason", "unit", "--database-url", url]) == 0
    out = capsys.readouterr().out
    assert "skipped, already reprocessed" in out and "reprocessed 0" in out
