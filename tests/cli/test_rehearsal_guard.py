"""What tells a live database from one a rehearsal may use: whether it has processed a
message. On both databases, since the guard reads them."""

from __future__ import annotations

from pathlib import Path

import pytest

from service.cli.rehearsal import holds_messages
from tests.cli.test_cli import run_cli
from tests.cli.test_ingress import _interaction_feed

pytestmark = pytest.mark.slow  # the real commands


def test_a_database_holds_messages_only_once_it_has_processed_one(
    database_url: str, tmp_path: Path
) -> None:
    assert not holds_messages(database_url)  # no tables yet (a missing SQLite file: not made)
    assert run_cli("db", "upgrade", "--database-url", database_url).returncode == 0
    assert not holds_messages(database_url)  # the schema, and no message
    feed = tmp_path / "feed.hl7"
    _interaction_feed(feed)
    assert run_cli("replay", str(feed), "--database-url", database_url).returncode == 0
    assert holds_messages(database_url)


def test_a_missing_sqlite_file_is_not_created(tmp_path: Path) -> None:
    assert not holds_messages(f"sqlite:///{tmp_path / 'none.db'}")
    assert not (tmp_path / "none.db").exists()
