"""Roster changes beside the routing file: validation naming the key, precedence, cancel."""

from __future__ import annotations

import tomllib
from datetime import UTC, datetime
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

import pytest

from alerts.roster_state import (
    NewOverride,
    RosterError,
    RosterState,
    ShiftEntry,
    add_override,
    apply_state,
    cancel_override,
    parse_state,
    replace_shifts,
    to_doc,
)
from alerts.routing import load_routing

SHIPPED = Path(__file__).resolve().parents[2] / "configs" / "routing.toml"
UTC_ZONE = ZoneInfo("UTC")
NOW = datetime(2024, 1, 8, 12, 0, tzinfo=UTC)


def t(text: str) -> datetime:
    return datetime.fromisoformat(text).replace(tzinfo=UTC)


def routing(file_override: bool = False) -> Any:
    doc = tomllib.loads(SHIPPED.read_text())
    if file_override:
        doc["teams"]["icu"]["overrides"] = [
            {"tier": 1, "person": "medicine-resident", "start": "2024-01-10T00:00",
             "end": "2024-01-11T00:00"},
        ]  # fmt: skip
    return load_routing(doc, UTC_ZONE, ["console"])


ICU_SHIFT = ShiftEntry(
    team="icu", tier=1, person="neph-fellow", start=t("2024-01-09"), end=t("2024-01-12"),
    source="q.ics uid-1",
)  # fmt: skip
CLI_OVERRIDE = NewOverride("icu", 1, "onc-fellow", t("2024-01-10T06:00"), t("2024-01-10T12:00"))


def on_call(config: Any, at: str) -> str:
    return str(config.teams["icu"].schedule.on_call(1, t(at)))


def test_precedence_rotation_then_shifts_then_file_overrides_then_operator_overrides() -> None:
    state = replace_shifts(RosterState(), "icu", 1, [ICU_SHIFT])
    state, made = add_override(state, routing(True), CLI_OVERRIDE, NOW)
    config = apply_state(routing(file_override=True), state)
    assert on_call(config, "2024-01-08T12:00") == "icu-resident"  # the rotation
    assert on_call(config, "2024-01-09T12:00") == "neph-fellow"  # an imported shift
    assert on_call(config, "2024-01-10T03:00") == "medicine-resident"  # file override > shift
    assert on_call(config, "2024-01-10T07:00") == "onc-fellow"  # operator's > file's
    assert on_call(config, "2024-01-11T12:00") == "neph-fellow"  # shift again
    found = config.teams["icu"].schedule.override_at(1, t("2024-01-10T07:00"))
    assert found.source == f"override {made.id}"


def test_a_cancelled_override_no_longer_applies_but_is_kept() -> None:
    state, made = add_override(RosterState(), routing(), CLI_OVERRIDE, NOW)
    state = cancel_override(state, made.id, NOW)
    assert on_call(apply_state(routing(), state), "2024-01-10T07:00") == "icu-resident"
    assert len(state.overrides) == 1 and state.overrides[0].cancelled_at == NOW
    with pytest.raises(RosterError, match="already cancelled"):
        cancel_override(state, made.id, NOW)
    with pytest.raises(RosterError, match="no override 'nope'"):
        cancel_override(state, "nope", NOW)


def test_the_document_round_trips_through_json() -> None:
    state, _ = add_override(RosterState(), routing(), CLI_OVERRIDE, NOW)
    state = replace_shifts(state, "icu", 1, [ICU_SHIFT])
    assert parse_state(to_doc(state)) == state


def test_an_import_replaces_only_its_own_tier() -> None:
    other = ICU_SHIFT.model_copy(update={"tier": 2, "person": "icu-attending"})
    state = replace_shifts(RosterState(), "icu", 2, [other])
    state = replace_shifts(state, "icu", 1, [ICU_SHIFT])
    state = replace_shifts(state, "icu", 1, [])
    assert state.shifts == (other,)


@pytest.mark.parametrize(
    ("entry", "message"),
    [
        (NewOverride("nope", 1, "onc-fellow", t("2024-01-10"), t("2024-01-11")), "no team 'nope'"),
        (NewOverride("icu", 3, "onc-fellow", t("2024-01-10"), t("2024-01-11")), "has 2 tier"),
        (NewOverride("icu", 1, "ghost", t("2024-01-10"), t("2024-01-11")), "no person 'ghost'"),
        (NewOverride("icu", 1, "onc-fellow", t("2024-01-11"), t("2024-01-10")), "after its --from"),
    ],
)
def test_an_override_that_does_not_fit_is_refused(entry: NewOverride, message: str) -> None:
    with pytest.raises(RosterError, match=message):
        add_override(RosterState(), routing(), entry, NOW)


@pytest.mark.parametrize(
    ("doc", "message"),
    [
        ({"overrides": [{"team": "icu"}]}, "overrides[0].person': required"),
        ({"shifts": [{"team": "icu", "person": "x", "start": "2024-01-01T00:00",
                      "end": "2024-01-02T00:00Z"}]}, "shifts[0].start'"),  # naive time
        ({"version": 2}, "'version': 2 is not 1"),
        ({"shifts": [], "colour": 1}, "'colour': unknown setting"),
        ({"shifts": [{"team": "icu", "person": "x", "start": "2024-01-02T00:00Z",
                      "end": "2024-01-01T00:00Z"}]}, "shifts[0].end': must be after start"),
    ],
)  # fmt: skip
def test_a_bad_document_names_the_key(doc: dict[str, Any], message: str) -> None:
    with pytest.raises(RosterError, match=message.replace("[", r"\[").replace("]", r"\]")):
        parse_state(doc)


def test_an_entry_that_no_longer_fits_the_routing_names_its_key() -> None:
    ghost = ICU_SHIFT.model_copy(update={"person": "ghost"})
    state = RosterState(shifts=(ICU_SHIFT, ghost))
    with pytest.raises(RosterError, match=r"oncall key 'shifts\[1\]': no person 'ghost'"):
        apply_state(routing(), state)
