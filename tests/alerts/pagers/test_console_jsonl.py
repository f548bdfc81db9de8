"""Console and JSON-lines transports."""

from __future__ import annotations

import asyncio
import io
import json
from pathlib import Path

import pytest

from alerts.pagers import ConsolePager, JsonLinesPager, Outcome, Pager
from alerts.render import render_text
from tests.alerts.pagers.factories import MRN, make_notification

# DESIGN.md "Contract used by black-box checks": every line carries at least these keys.
CONTRACT_KEYS = {
    "event",
    "rule",
    "severity",
    "patient",
    "analyte",
    "value",
    "unit",
    "observed_at",
    "iron",
    "antiresorptive",
    "dedup_key",
    "recipients",
}


async def test_console_prints_one_block_to_the_given_stream() -> None:
    stream = io.StringIO()
    pager = ConsolePager(stream=stream)
    n = make_notification()
    result = await pager.send(n, "oncall-endo")
    assert result.outcome is Outcome.DELIVERED
    assert stream.getvalue() == f"----- page to oncall-endo -----\n{render_text(n)}\n"
    await pager.close()
    await pager.close()  # idempotent
    assert not stream.closed  # not ours to close


async def test_console_calls_a_non_paging_notice_a_notice() -> None:
    stream = io.StringIO()
    await ConsolePager(stream=stream).send(make_notification(severity="info"), "nephrology")
    assert stream.getvalue().startswith("----- notice to nephrology -----\n")


async def test_console_defaults_to_stdout(capsys: pytest.CaptureFixture[str]) -> None:
    pager = ConsolePager()
    assert pager.name == "console" and isinstance(pager, Pager)
    await pager.send(make_notification(), "pharmacy")
    assert "page to pharmacy" in capsys.readouterr().out


async def test_console_reports_a_closed_stream_instead_of_raising() -> None:
    stream = io.StringIO()
    stream.close()
    result = await ConsolePager(stream=stream).send(make_notification(), "x")
    assert result.outcome is Outcome.FINAL


def read_lines(path: Path) -> list[dict[str, object]]:
    return [json.loads(line) for line in path.read_text("utf-8").splitlines()]


async def test_jsonl_writes_one_contract_line_per_notification(tmp_path: Path) -> None:
    path = tmp_path / "nested" / "dir" / "pages.jsonl"  # parent created on first use
    pager = JsonLinesPager(path)
    assert pager.name == "jsonl" and isinstance(pager, Pager)
    n = make_notification()
    for recipient in n.recipients:  # the dispatcher calls once per recipient
        result = await pager.send(n, recipient)
        assert result.outcome is Outcome.DELIVERED
    await pager.send(make_notification(notification_id="ntf-2", event="update"), "pharmacy")
    await pager.close()

    lines = read_lines(path)
    assert [line["event"] for line in lines] == ["alert", "update"]
    assert lines[0].keys() >= CONTRACT_KEYS
    assert lines[0] == n.to_json()
    assert lines[0]["recipients"] == ["oncall-endo", "pharmacy"]
    assert lines[0]["patient"] == {"id": MRN, "authority": "", "location": "Ward 7B bed 12"}


async def test_jsonl_does_not_duplicate_across_reopen(tmp_path: Path) -> None:
    path = tmp_path / "pages.jsonl"
    first = JsonLinesPager(path)
    await first.send(make_notification(), "oncall-endo")
    await first.close()
    # A restart: a new pager on the same file knows what is already there.
    second = JsonLinesPager(path)
    result = await second.send(make_notification(), "pharmacy")
    assert result.outcome is Outcome.DELIVERED and result.status_class == "duplicate"
    await second.send(make_notification(notification_id="ntf-new"), "pharmacy")
    await second.close()
    assert [line["notification_id"] for line in read_lines(path)] == [
        "ntf-8c1f2a.alert.1",
        "ntf-new",
    ]


async def test_jsonl_concurrent_sends_of_one_notification_write_one_line(
    tmp_path: Path,
) -> None:
    path = tmp_path / "pages.jsonl"
    pager = JsonLinesPager(path)
    n = make_notification()
    results = await asyncio.gather(*(pager.send(n, f"r{i}") for i in range(10)))
    await pager.close()
    assert all(r.outcome is Outcome.DELIVERED for r in results)
    assert len(read_lines(path)) == 1


async def test_jsonl_repairs_a_torn_last_line(tmp_path: Path) -> None:
    path = tmp_path / "pages.jsonl"
    path.write_bytes(b'{"notification_id": "old"}\n{"notification_id": "torn", "ev')
    pager = JsonLinesPager(path)
    await pager.send(make_notification(), "oncall-endo")
    await pager.send(make_notification(notification_id="old"), "oncall-endo")  # already there
    await pager.close()
    raw = path.read_bytes().splitlines()
    assert raw[1] == b'{"notification_id": "torn", "ev'  # left as it was, but ended
    assert json.loads(raw[2])["notification_id"] == "ntf-8c1f2a.alert.1"
    assert len(raw) == 3


async def test_jsonl_unencodable_notification_is_final(tmp_path: Path) -> None:
    pager = JsonLinesPager(tmp_path / "pages.jsonl")
    nan = await pager.send(make_notification(value=float("nan")), "x")
    odd = await pager.send(make_notification(extra={"when": object()}), "x")
    await pager.close()
    assert nan.outcome is Outcome.FINAL and odd.outcome is Outcome.FINAL
    assert MRN not in nan.detail


async def test_jsonl_io_error_is_retryable_and_recovers(tmp_path: Path) -> None:
    path = tmp_path / "pages.jsonl"
    path.mkdir()  # a directory where the file should be: opening fails
    pager = JsonLinesPager(path)
    result = await pager.send(make_notification(), "x")
    assert result.outcome is Outcome.RETRYABLE and result.status_class == "io"
    path.rmdir()
    assert (await pager.send(make_notification(), "x")).outcome is Outcome.DELIVERED
    await pager.close()
    assert len(read_lines(path)) == 1
