"""`generate-feed --ending-now`: a feed whose planted cases page under the wall clock, as
`labsentinel run` judges; without it, the same cases are already too old and only reach the
worklist (which is what made a newcomer's first `run` page nothing)."""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.cli.test_cli import read_jsonl, run_cli

pytestmark = pytest.mark.slow


def _severities(tmp_path: Path, *extra: str) -> tuple[int, list[str]]:
    """Planted cases, and the severity of each alert notification of a wall-clock replay."""
    name = "now" if extra else "default"
    feed, pages = tmp_path / f"{name}.hl7", tmp_path / f"{name}.jsonl"
    made = run_cli(
        "generate-feed", "--out", str(feed), "--messages", "800", "--planted", "5", *extra
    )
    assert made.returncode == 0, made.stderr
    replayed = run_cli(
        "replay", str(feed), "--clock", "wall", "--pages-out", str(pages),
        "--database-url", f"sqlite:///{tmp_path / name}.db",
    )  # fmt: skip
    assert replayed.returncode == 0, replayed.stderr
    return 5, [p["severity"] for p in read_jsonl(pages) if p["event"] == "alert"]


def test_a_feed_ending_now_pages_every_planted_case_by_the_wall_clock(tmp_path: Path) -> None:
    planted, severities = _severities(tmp_path, "--ending-now")
    paged = [s for s in severities if s in ("high", "critical")]
    assert len(paged) == planted, severities


def test_the_default_feed_is_too_old_to_page_by_the_wall_clock(tmp_path: Path) -> None:
    planted, severities = _severities(tmp_path)
    assert len(severities) == planted and set(severities) == {"info"}, severities
