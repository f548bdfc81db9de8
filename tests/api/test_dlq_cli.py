"""`labsentinel dlq list|show|reprocess` on the story database."""

from __future__ import annotations

from pathlib import Path

import pytest

from service.cli.main import main
from tests.api.story import Story, fixed_lab_catalog


def test_dlq_list_show_and_reprocess(
    story: Story, tmp_path: Path, capsys: pytest.CaptureFixture[str], monkeypatch
) -> None:
    url = story.settings.database.url
    assert main(["dlq", "list", "--database-url", url]) == 0
    listed = capsys.readouterr().out
    assert "2 of 2 dead letters" in listed and "unit" in listed and "MSH|" not in listed
    unit_id = next(d.id for d in story.dead_letters() if d.error_class == "unit")
    assert main(["dlq", "show", str(unit_id), "--database-url", url]) == 0
    assert "MSH|" not in capsys.readouterr().out, "raw only on request"
    assert main(["dlq", "show", str(unit_id), "--raw", "--database-url", url]) == 0
    assert "MSH|" in capsys.readouterr().out
    # Still broken: exit 1 and the reason.
    assert main(["dlq", "reprocess", str(unit_id), "--database-url", url]) == 1
    assert "dead_letter" in capsys.readouterr().out
    # After the fix (the lab catalog learns the unit), it is stored.
    monkeypatch.setenv("LABSENTINEL_CLINICAL_LAB_CATALOG", str(fixed_lab_catalog(tmp_path)))
    assert main(["dlq", "reprocess", str(unit_id), "--database-url", url]) == 0
    assert "stored" in capsys.readouterr().out
