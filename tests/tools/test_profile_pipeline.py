"""The profiling command runs (no timing is asserted) and leaves the modules as they were."""

from __future__ import annotations

from service.ingest import store
from service.tools.profile_pipeline import profile


def test_profile_pipeline_reports_the_steps(sqlite_url: str) -> None:
    upsert = store.upsert_results
    lines = profile(sqlite_url, messages=600, batch=200)
    text = "\n".join(lines)
    assert "600 messages, sqlite" in lines[0]
    assert "transaction, wall" in text and "lab_results upsert" in text
    assert store.upsert_results is upsert
