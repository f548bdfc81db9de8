"""render_text / render_subject: what a page says (CLINICAL.md) and how it shrinks."""

from __future__ import annotations

import pytest

from alerts.notification import DrugRef
from alerts.render import (
    ACTION_IV_REPLACEMENT,
    ACTION_REPEAT_LABS,
    ACTION_REVIEW_FCM,
    ACTION_REVIEW_IRON,
    DEFAULT_ACTIONS,
    default_actions,
    render_subject,
    render_text,
)
from tests.alerts.pagers.factories import LOCATION, MRN, make_notification

ESSENTIALS = ("ALERT CRITICAL: phosphate <0.9 mg/dL", "Ack: https://labsentinel.example/ack/7Qx2")


def test_full_text_says_what_clinical_asks_for() -> None:
    text = render_text(make_notification())
    lines = text.splitlines()
    assert lines[0] == "ALERT CRITICAL: phosphate <0.9 mg/dL"
    for expected in (
        f"MRN {MRN} @ {LOCATION}",
        "ref 2.5-4.5 mg/dL",
        "drawn 2024-05-14 08:30",
        "Day 16 after IV iron: ferric carboxymaltose, ordered for 2024-04-28",
        "Antiresorptive: denosumab, ordered for 2024-03-01",
        "Repeat phosphate, calcium, magnesium and PTH",
        "IV replacement per local protocol if severe or symptomatic",
        "ferric derisomaltose",
        "Inform every prescriber",
    ):
        assert expected in text
    assert lines[-1] == "Ack: https://labsentinel.example/ack/7Qx2"
    assert text.isascii()


@pytest.mark.parametrize(
    ("extra", "iron_word", "antiresorptive_word"),
    [
        # only orders on file: nothing says "given"
        ({}, "ordered for", "ordered for"),
        # an administration (RAS RXA) confirms the iron dose, not the antiresorptive
        ({"iron_given": True}, "given", "ordered for"),
        ({"iron_given": True, "antiresorptive_given": True}, "given", "given"),
    ],
)
def test_given_only_when_an_administration_confirms_it(
    extra: dict[str, object], iron_word: str, antiresorptive_word: str
) -> None:
    text = render_text(make_notification(extra=extra))
    assert f"ferric carboxymaltose, {iron_word} 2024-04-28" in text
    assert f"denosumab, {antiresorptive_word} 2024-03-01" in text


def test_advisory_options_are_suggestions_not_orders() -> None:
    text = render_text(make_notification(event="advisory", actions=("consider a baseline",)))
    assert "Suggestions: consider a baseline" in text and "Do:" not in text


@pytest.mark.parametrize(
    ("event", "first_word"),
    [
        ("alert", "ALERT"),
        ("update", "UPDATE"),
        ("escalation", "ESCALATION"),
        ("resolved", "RESOLVED"),
        ("reminder", "REMINDER"),
        ("advisory", "ADVISORY"),
        ("acknowledged", "ACKNOWLEDGED"),
        ("something-new", "SOMETHING-NEW"),  # an event added later still renders
    ],
)
def test_first_line_names_the_event(event: str, first_word: str) -> None:
    assert render_text(make_notification(event=event)).split(" ", 1)[0] == first_word


@pytest.mark.parametrize(
    ("overrides", "actions"),
    [
        # ferric carboxymaltose: the page names the lower-risk alternative
        ({}, (ACTION_REPEAT_LABS, ACTION_IV_REPLACEMENT, ACTION_REVIEW_FCM)),
        # another iron: the generic "consider a lower-risk formulation"
        (
            {"iron": DrugRef("iron sucrose", "2024-04-28", 16)},
            (ACTION_REPEAT_LABS, ACTION_IV_REPLACEMENT, ACTION_REVIEW_IRON),
        ),
        # a resolved notice asks nothing of anyone
        ({"event": "resolved"}, ()),
        ({"event": "acknowledged"}, ()),
    ],
)
def test_default_actions(overrides: dict[str, object], actions: tuple[str, ...]) -> None:
    got = default_actions(make_notification(**overrides))
    assert got[: len(actions)] == actions
    if not actions:
        assert got == ()


def test_default_actions_constant_is_the_generic_list() -> None:
    assert default_actions(make_notification(iron=None)) == DEFAULT_ACTIONS


def test_service_supplied_actions_replace_the_defaults() -> None:
    text = render_text(make_notification(actions=("Call renal registrar",)))
    assert "Do: Call renal registrar" in text
    assert ACTION_REPEAT_LABS not in text


def test_missing_parts_are_left_out_cleanly() -> None:
    n = make_notification(
        value=None,
        comparator="",
        reference_range="",
        observed_at=None,
        iron=None,
        antiresorptive=None,
        patient_location="",
        ack_url="",
        analyte="ionized_calcium",
    )
    text = render_text(n)
    assert text.splitlines()[0] == "ALERT CRITICAL: ionized calcium value n/a"
    assert "Ack:" not in text and "@" not in text and "ref " not in text


def test_no_analyte_names_the_rule() -> None:
    text = render_text(make_notification(analyte=None, event="advisory", severity="info"))
    assert text.startswith("ADVISORY INFO: iron-antiresorptive-mineral")


def test_utc_times_say_so() -> None:
    assert "drawn 2024-05-13 22:30 UTC" in render_text(
        make_notification(observed_at="2024-05-13T22:30:00+00:00")
    )


def test_unit_already_in_reference_range_is_not_repeated() -> None:
    text = render_text(make_notification(reference_range="2.5-4.5 mg/dL"))
    assert "ref 2.5-4.5 mg/dL," in text


def test_double_trouble_is_in_the_headline() -> None:
    text = render_text(make_notification(extra={"double_trouble": True}))
    assert "phosphate and calcium both low" in text.splitlines()[0]


def test_control_characters_in_data_cannot_forge_lines() -> None:
    text = render_text(make_notification(patient_location="Ward 7B\r\nAck: https://evil"))
    assert [line for line in text.splitlines() if line.startswith("Ack:")] == [ESSENTIALS[1]]
    assert "Ward 7B Ack: https://evil" in text


def test_subject_has_no_patient_identifiers() -> None:
    subject = render_subject(make_notification(patient_location="Ward 7B\nBcc: x@y"))
    assert subject == "[LabSentinel] ALERT CRITICAL: phosphate <0.9 mg/dL"
    assert MRN not in subject and "Ward" not in subject and "\n" not in subject


# --- truncation ------------------------------------------------------------------------------


@pytest.mark.parametrize("max_chars", [400, 300, 250, 200, 160, 120, 100, 90, 80])
def test_truncation_fits_and_keeps_the_essentials(max_chars: int) -> None:
    text = render_text(make_notification(), max_chars=max_chars)
    assert len(text) <= max_chars
    for essential in ESSENTIALS:
        assert essential in text


def test_no_truncation_when_it_fits() -> None:
    n = make_notification()
    assert render_text(n, max_chars=10_000) == render_text(n)


def test_actions_go_first_then_location() -> None:
    n = make_notification()
    full = render_text(n)
    without_actions = full[: full.index("\nDo: ")] + "\n" + ESSENTIALS[1]
    # Room for everything but the actions: actions shed (one by one), location kept.
    text = render_text(n, max_chars=len(without_actions))
    assert "Do:" not in text and LOCATION in text
    # One character less: the location goes, the patient id stays.
    text = render_text(n, max_chars=len(without_actions) - 1)
    assert LOCATION not in text and f"MRN {MRN}" in text
    assert "ferric carboxymaltose" in text and "denosumab" in text


def test_some_actions_survive_when_there_is_room() -> None:
    n = make_notification()
    text = render_text(n, max_chars=len(render_text(n)) - 40)
    assert ACTION_REPEAT_LABS in text and "Inform every prescriber" not in text


def test_patient_id_outlives_drug_details() -> None:
    text = render_text(make_notification(), max_chars=110)
    assert f"MRN {MRN}" in text and text.endswith(ESSENTIALS[1])


def test_essentials_are_never_cut_even_when_they_do_not_fit() -> None:
    text = render_text(make_notification(), max_chars=20)
    assert text == "\n".join(ESSENTIALS)
