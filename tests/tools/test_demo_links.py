"""The demo's ack links are honest: it serves no web pages, so they point at a host that
never resolves and the demo says so, instead of at a port that looks real."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from service.tools.demo import DEMO_BASE_URL, DEMO_LINK_NOTE, run_demo


@pytest.mark.slow
@pytest.mark.kafka
def test_demo_ack_links_point_at_the_note_host(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    assert run_demo(messages=400, planted=2, workdir=tmp_path, timeout_s=120) == 0
    assert DEMO_LINK_NOTE in capsys.readouterr().out
    pages = [json.loads(x) for x in (tmp_path / "pages.jsonl").read_text().splitlines() if x]
    links = [p["ack_url"] for p in pages if p.get("ack_url")]
    assert links and all(link.startswith(DEMO_BASE_URL + "/") for link in links)
    assert not any("127.0.0.1:8080" in json.dumps(p) for p in pages)
