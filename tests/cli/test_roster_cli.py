"""`routes test`, `oncall override|overrides`, `oncall import-ical` as an operator runs them:
the real command on a copy of the shipped configuration (the roster file is written beside
its routing file, so each test has its own folder)."""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from service.cli.main import main

CONFIGS = Path(__file__).resolve().parents[2] / "configs"
ICAL = Path(__file__).resolve().parents[1] / "alerts" / "ical"
AT = "2024-01-09T14:00"  # shipped rotations start 2024-01-01 08:00 (UTC): week 2


@pytest.fixture
def config(tmp_path: Path) -> Path:
    for name in ("labsentinel.toml", "routing.toml"):
        shutil.copy(CONFIGS / name, tmp_path / name)
    return tmp_path / "labsentinel.toml"


def run(capsys: pytest.CaptureFixture[str], config: Path, *args: str) -> tuple[int, str, str]:
    status = main([*args, "--config", str(config)])
    captured = capsys.readouterr()
    return status, captured.out, captured.err


def test_routes_test_names_route_team_tier_person_and_why(
    config: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    status, out, _ = run(
        capsys, config, "routes", "test", "--location", "6S/101/A", "--service", "NEP",
        "--severity", "critical", "--analyte", "phosphate", "--at", AT,
    )  # fmt: skip
    assert status == 0
    assert "[0] icu -> icu: no: locations did not match" in out
    assert "[1] nephrology -> nephrology: MATCH" in out
    assert "Team: nephrology (Nephrology) by route 'nephrology'" in out
    assert "Pages: yes, tier 1 of 2" in out
    assert "On call: neph-fellow" in out and "tier 1 rotation: shift 1 " in out
    assert "Deliveries: console=pager-4101" in out
    assert "tier 2 (neph-attending) after 10 min" in out


def test_routes_test_as_json_and_the_fallback(
    config: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    status, out, _ = run(
        capsys, config, "routes", "test", "--location", "ER", "--service", "EMR",
        "--severity", "high", "--at", AT, "--json",
    )  # fmt: skip
    doc = json.loads(out)
    assert status == 0 and doc["team"] == "pharmacy" and doc["route"] == ""
    assert doc["on_call"]["person"] == "pharmacist-b"
    assert doc["fallbacks"] == ["no route matched: the fallback team 'pharmacy' ([fallback].team)"]


def test_an_override_wins_is_listed_and_cancelled(
    config: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    status, out, _ = run(
        capsys, config, "oncall", "override", "--team", "icu", "--person", "icu-attending",
        "--from", "2024-01-09T12:00", "--until", "2099-01-01T00:00", "--reason", "swap",
    )  # fmt: skip
    assert status == 0 and "override " in out and "kill -HUP" in out
    ident = out.split()[1].rstrip(":")
    assert (config.parent / "routing.oncall.json").exists()
    _, explained, _ = run(
        capsys, config, "routes", "test", "--location", "ICU1", "--severity", "high", "--at", AT
    )
    assert "On call: icu-attending" in explained
    assert f"because: override {ident} (swap)" in explained
    _, listed, _ = run(capsys, config, "oncall", "overrides")
    assert ident in listed and "[active]" in listed and "swap" in listed
    _, shown, _ = run(capsys, config, "oncall", "show", "icu", "--at", AT)
    assert "tier 1: icu-attending" in shown  # the existing command sees it too
    status, _, _ = run(capsys, config, "oncall", "override", "--cancel", ident)
    assert status == 0
    _, explained, _ = run(
        capsys, config, "routes", "test", "--location", "ICU1", "--severity", "high", "--at", AT
    )
    assert "On call: icu-resident" in explained
    _, listed, _ = run(capsys, config, "oncall", "overrides")
    assert ident not in listed
    _, everything, _ = run(capsys, config, "oncall", "overrides", "--all")
    assert ident in everything and "[cancelled]" in everything


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (("--team", "icu", "--person", "ghost", "--from", AT, "--until", "2024-01-10"),
         "no person 'ghost'"),
        (("--team", "icu", "--person", "icu-attending", "--from", AT, "--until", "2024-01-08"),
         "--until must be after its --from"),
        (("--team", "icu", "--person", "icu-attending", "--from", "soon", "--until", AT),
         "--from: not an ISO 8601 time"),
        (("--team", "icu"), "needs --person, --from, --until"),
        (("--cancel", "abcdef12"), "no override 'abcdef12'"),
    ],
)  # fmt: skip
def test_a_wrong_override_is_one_sentence_and_exit_2(
    config: Path, capsys: pytest.CaptureFixture[str], args: tuple[str, ...], message: str
) -> None:
    status, _, err = run(capsys, config, "oncall", "override", *args)
    assert status == 2 and message in err and "Traceback" not in err
    assert not (config.parent / "routing.oncall.json").exists()  # nothing written


def _people_for_ical(config: Path) -> None:
    """Give the shipped routing the people the fixture names (by name and by address)."""
    routing = config.parent / "routing.toml"
    routing.write_text(
        routing.read_text()
        + '\n[people.ada]\nname = "Ada Lovelace"\ncontacts = { console = "pager-1" }\n'
        '[people.bob]\nname = "Bob Babbage"\ncontacts = { console = "pager-2" }\n'
    )
    settings = config.read_text().replace('timezone = "UTC"', 'timezone = "America/New_York"')
    config.write_text(settings)


def test_import_ical_writes_shifts_that_page(
    config: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    _people_for_ical(config)
    ics = ICAL / "qgenda_nights.ics"
    status, out, err = run(
        capsys, config, "oncall", "import-ical", str(ics), "--team", "icu", "--tier", "1",
        "--from", "2024-03-01",
    )  # fmt: skip
    assert status == 0, err
    assert "4 shift(s) of icu tier 1 imported" in out
    _, explained, _ = run(
        capsys, config, "routes", "test", "--location", "ICU1", "--severity", "critical",
        "--at", "2024-03-09T23:00",
    )  # fmt: skip
    assert "On call: bob (Bob Babbage)" in explained
    assert "because: imported shift qgenda_nights.ics night-bob-2024-03-09@qgenda.example" in (
        explained
    )
    # A second import of the tier replaces the first (a dry run writes nothing).
    status, out, _ = run(
        capsys, config, "oncall", "import-ical", str(ics), "--team", "icu", "--tier", "1",
        "--from", "2024-03-10T12:00", "--days", "1", "--dry-run",
    )  # fmt: skip
    assert "1 shift(s) read" in out
    state = json.loads((config.parent / "routing.oncall.json").read_text())
    assert len(state["shifts"]) == 4


def test_import_ical_names_the_event_of_an_unknown_person(
    config: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    _people_for_ical(config)
    status, _, err = run(
        capsys, config, "oncall", "import-ical", str(ICAL / "unknown_person.ics"),
        "--team", "icu", "--tier", "1", "--from", "2024-03-01",
    )  # fmt: skip
    assert status == 2
    assert "unknown_person.ics line 13: event UID stranger@qgenda.example" in err
    assert not (config.parent / "routing.oncall.json").exists()


@pytest.mark.slow
def test_the_installed_command_runs_routes_test(config: Path) -> None:
    done = subprocess.run(
        [sys.executable, "-m", "service.cli.main", "routes", "test", "--severity", "high",
         "--location", "ICU1", "--at", AT, "--config", str(config)],
        capture_output=True, text=True, timeout=120,
    )  # fmt: skip
    assert done.returncode == 0 and "On call: icu-resident" in done.stdout
