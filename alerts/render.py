"""Pager-sized text and e-mail subjects for a ``Notification``. Pure: no I/O, no clock.

What a page says follows CLINICAL.md ("What a page should say"): severity, analyte, value with
comparator and unit, reference range, time drawn; days since the IV iron and which iron; which
antiresorptive and when ("given" only when an administration confirms the dose, otherwise
"ordered for"); patient id and location; suggested actions ("Do:" on a page, "Suggestions:" on
an advisory, whose options are the prescriber's to weigh); the acknowledgement link.

Pagers are small and old ones are 7-bit, so every word this module adds is ASCII and control
characters coming from the data are flattened to spaces (a CR/LF in a field must not forge an
extra line on a pager, nor a header in an e-mail).

``render_text(n, max_chars=...)`` sheds the least important parts first when the text is too
long: suggested actions (last first), then the location, then the dose dates, then the
reference range, and last it cuts the end of the body (patient id and time drawn come first,
so they are the last to go). The first line (event, severity, analyte, value, unit) and the
ack link are never cut; if they alone exceed ``max_chars`` they are returned whole, longer
than asked, because a page without them is worse than a long one.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, replace
from datetime import datetime, timedelta

from alerts.identity import split_patient_key
from alerts.notification import DrugRef, Notification
from alerts.text_safety import strip_bidi

# Suggested actions, CLINICAL.md "What a page should say" (after the Stokes et al. case series).
ACTION_REPEAT_LABS = "Repeat phosphate, calcium, magnesium and PTH"
# "Symptomatic": muscle weakness, tingling, numbness, severe fatigue, arrhythmia (CLINICAL.md);
# the list is left out of the page to keep it pager-sized.
ACTION_IV_REPLACEMENT = "IV replacement per local protocol if severe or symptomatic"
ACTION_REVIEW_IRON = "Review further IV iron doses; consider a lower-risk formulation"
# Ferric carboxymaltose has the highest risk (PHOSPHARE-IDA, JAMA 2020: 75.0 % vs 7.9 % with
# ferric derisomaltose), so name the alternative when that is the iron given.
ACTION_REVIEW_FCM = (
    "Review further IV iron doses; consider a lower-risk formulation (e.g. ferric derisomaltose)"
)
ACTION_INFORM_PRESCRIBERS = "Inform every prescriber of both drugs"

DEFAULT_ACTIONS: tuple[str, ...] = (
    ACTION_REPEAT_LABS,
    ACTION_IV_REPLACEMENT,
    ACTION_REVIEW_IRON,
    ACTION_INFORM_PRESCRIBERS,
)

_EVENT_WORDS = {
    "alert": "ALERT",
    "update": "UPDATE",
    "escalation": "ESCALATION",
    "resolved": "RESOLVED",
    "reminder": "REMINDER",
    "advisory": "ADVISORY",
    "acknowledged": "ACKNOWLEDGED",
}
# Events that tell someone a problem is over: no actions to suggest.
_CLOSING_EVENTS = frozenset({"resolved", "acknowledged"})

_CONTROL = re.compile(r"[\x00-\x1f\x7f-\x9f\u2028\u2029]+")
_ELLIPSIS = "..."


def default_actions(n: Notification) -> tuple[str, ...]:
    """The suggested actions for ``n`` when the service did not supply its own.

    Nothing for a closing event (resolved, acknowledged); otherwise CLINICAL.md's list, naming
    a lower-risk formulation when the iron given was ferric carboxymaltose.
    """
    if n.event in _CLOSING_EVENTS:
        return ()
    iron = (n.iron.drug if n.iron else "").lower()
    review = ACTION_REVIEW_FCM if "carboxymaltose" in iron else ACTION_REVIEW_IRON
    return (ACTION_REPEAT_LABS, ACTION_IV_REPLACEMENT, review, ACTION_INFORM_PRESCRIBERS)


def render_subject(n: Notification) -> str:
    """One-line e-mail subject: event, severity, analyte and value. Never a patient id or
    location (subjects show on lock screens and in mail logs)."""
    return _clean(f"[LabSentinel] {_headline(n)}")


def render_text(n: Notification, *, max_chars: int | None = None) -> str:
    """Pager text for ``n``, at most ``max_chars`` characters when given (see module doc)."""
    parts = _Parts.of(n)
    text = parts.compose()
    if max_chars is None or len(text) <= max_chars:
        return text
    steps = parts.degrade()
    for shorter in steps:
        text = shorter.compose()
        if len(text) <= max_chars:
            return text
    return _cut_middle(steps[-1], max_chars)


@dataclass(frozen=True)
class _Parts:
    headline: str  # never cut
    reference: str  # "ref 2.5-4.5 mg/dL"
    drawn: str  # "drawn 2024-05-14 08:30"
    iron: str
    iron_date: str
    antiresorptive: str
    antiresorptive_date: str
    patient: str
    location: str
    actions: tuple[str, ...]
    ack: str  # never cut
    # A page's actions are what the on-call clinician is asked to do; an advisory's are
    # options for the prescriber to weigh, and must not read as orders.
    actions_label: str = "Do: "

    @classmethod
    def of(cls, n: Notification) -> _Parts:
        reference = ""
        if n.reference_range:
            ref = _clean(n.reference_range)
            unit = _clean(n.unit)
            reference = f"ref {ref}" if (not unit or unit in ref) else f"ref {ref} {unit}"
        actions = n.actions if n.actions else default_actions(n)
        return cls(
            headline=_headline(n),
            reference=reference,
            drawn=f"drawn {_when(n.observed_at)}" if n.observed_at else "",
            iron=_iron(n.iron),
            iron_date=_dose_date(n.iron, bool(n.extra.get("iron_given"))),
            antiresorptive=(
                f"Antiresorptive: {_clean(n.antiresorptive.drug)}" if n.antiresorptive else ""
            ),
            antiresorptive_date=_dose_date(
                n.antiresorptive, bool(n.extra.get("antiresorptive_given"))
            ),
            patient=_patient(n.patient_id),
            location=_clean(n.patient_location),
            actions=tuple(_clean(a) for a in actions if a.strip()),
            ack=f"Ack: {_clean(n.ack_url)}" if n.ack_url else "",
            actions_label="Suggestions: " if n.event == "advisory" else "Do: ",
        )

    def body_lines(self) -> list[str]:
        return [
            line
            # Most important first: when the body must be cut, its end goes.
            for line in (
                _join(" @ ", self.patient, self.location),
                _join(", ", self.reference, self.drawn),
                _join(", ", self.iron, self.iron_date),
                _join(", ", self.antiresorptive, self.antiresorptive_date),
                (self.actions_label + "; ".join(self.actions)) if self.actions else "",
            )
            if line
        ]

    def compose(self) -> str:
        return "\n".join(line for line in (self.headline, *self.body_lines(), self.ack) if line)

    def degrade(self) -> list[_Parts]:
        """Successively shorter versions, least important part shed first."""
        steps: list[_Parts] = []
        current = self
        while current.actions:
            current = replace(current, actions=current.actions[:-1])
            steps.append(current)
        current = replace(current, location="")
        steps.append(current)
        current = replace(current, iron_date="", antiresorptive_date="")
        steps.append(current)
        current = replace(current, reference="")
        steps.append(current)
        return steps


def _cut_middle(parts: _Parts, max_chars: int) -> str:
    """Keep the headline and the ack link whole; cut the body in between to fit."""
    head, tail = parts.headline, parts.ack
    fixed = len(head) + (len(tail) + 1 if tail else 0)
    room = max_chars - fixed - 1  # the newline after the headline
    body = "\n".join(parts.body_lines())
    if room <= len(_ELLIPSIS) or not body:
        return "\n".join(p for p in (head, tail) if p)
    return "\n".join(p for p in (head, body[: room - len(_ELLIPSIS)] + _ELLIPSIS, tail) if p)


def _headline(n: Notification) -> str:
    event = _EVENT_WORDS.get(n.event, _clean(n.event).upper() or "NOTICE")
    severity = _clean(n.severity).upper()
    if n.analyte is None:
        what = _clean(n.rule)
    else:
        what = f"{_clean(n.analyte).replace('_', ' ')} {_value(n)}".rstrip()
    if n.extra.get("double_trouble"):
        what += " (phosphate and calcium both low)"
    return f"{event} {severity}: {what}"


def _value(n: Notification) -> str:
    if n.value is None:
        return "value n/a"
    # str() of a float parsed from the lab's text is its shortest round-trip form: "0.9", "2.0".
    return _join(" ", f"{_clean(n.comparator)}{n.value}", _clean(n.unit))


def _iron(ref: DrugRef | None) -> str:
    if ref is None:
        return ""
    if ref.days_since is None:
        return f"IV iron: {_clean(ref.drug)}"
    return f"Day {ref.days_since} after IV iron: {_clean(ref.drug)}"


def _dose_date(ref: DrugRef | None, given: bool) -> str:
    """ "given 2024-04-28" only when an administration (RAS RXA) confirms the dose; an order
    alone says when it was due: "ordered for 2024-04-28"."""
    if ref is None or not ref.dose_at:
        return ""
    return f"{'given' if given else 'ordered for'} {_day(ref.dose_at)}"


def _when(iso: str) -> str:
    """'2024-05-14 08:30' as the feed gave it (local wall time); 'UTC' appended for UTC so a
    converted time is never mistaken for local. Unparseable text is shown as it is."""
    try:
        at = datetime.fromisoformat(iso)
    except ValueError:
        return _clean(iso)
    text = at.strftime("%Y-%m-%d %H:%M")
    return text + " UTC" if at.utcoffset() == timedelta(0) else text


def _day(iso: str) -> str:
    try:
        return datetime.fromisoformat(iso).strftime("%Y-%m-%d")
    except ValueError:
        return _clean(iso)


def _join(sep: str, *items: str) -> str:
    return sep.join(i for i in items if i)


def _clean(text: str) -> str:
    # Bidi overrides would let a field display as something else (alerts.text_safety).
    return _CONTROL.sub(" ", strip_bidi(text)).strip()


def _patient(key: str) -> str:
    """ "MRN 12345 (GH)": the identifier, and the authority that assigned it when known."""
    if not key:
        return ""
    identifier, authority = split_patient_key(key)
    return f"MRN {_clean(identifier)}" + (f" ({_clean(authority)})" if authority else "")
