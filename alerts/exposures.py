"""From stored pharmacy messages to what the patient actually received, as time intervals.

``derive_exposures`` replays the messages of each order (grouped by ``order_key``) in
``message_time`` order and turns the result into ``Exposure`` intervals:

- IV iron: one exposure per dose, ``[dose, dose + iron_window_days]`` (its risk window).
- antiresorptive and corrective, schedule "single": ``[dose, dose + effect_days + grace_days]``.
- schedule "ongoing": ``[start, (end_at, or discontinue/hold time, or now) + grace_days]``.

The schedule is the catalog's form for the order's route (``Drug.forms``): ibandronate given
IV is a single dose protecting 3 months, given PO an ongoing order counting while active + 30
days, so a discontinued oral order stops counting 30 days after its stop (CLINICAL.md "Edge
semantics"). The route kind is read from the order (RXR-1): ``config.parenteral_routes`` plus
SC/IM are parenteral, ``ORAL_ROUTES`` oral; anything else is unknown and a two-form drug then
takes both forms (the safe side).

Order control (ORC-1, HL7 table 0119), as applied here:

- NW, replace (RP RQ RO RU), change (XO XR XX), SC and any other control not listed below set
  the order's current drug, route, dose time and end time.
- CA / CR / OC (cancel) remove the order's exposure entirely - unless an administration
  (``administered=True``, an RAS) exists for the order: a recorded administration is a dose
  that happened and no later message undoes it.
- DC / DR / OD (discontinue) at message time: a single dose scheduled before it is kept, one
  at or after it is dropped; an ongoing order ends there (then + grace).
- HD / HR / OH (hold) are a discontinue for the held period: it opens at the hold's message
  time and closes at the next RL (release) or NW. A single dose scheduled inside a held period
  is dropped; an ongoing order has a gap (each part still gets its grace). RL and NW also lift
  a discontinue or cancel: the sender says the order is active again.
- Administrations: when an order has any, its doses are the administration times (RXA-3, the
  best dose time there is) instead of the scheduled time. For ongoing orders each
  administration also keeps the interval open until at least administration + grace.
- An administration whose RXA-20 completion status is NA (not administered) or RE (refused)
  opens no window (CLINICAL.md "Edge semantics"); it is ignored as if it had not arrived, so
  it neither counts as a dose nor replaces the order's scheduled dose (CLINICAL.md is silent
  on the scheduled dose; keeping it is the side that does not miss a page).

An order whose messages all carry a drug the catalog does not know gives nothing. Pure: ``now``
is a parameter; output is sorted, so the same messages in any input order give the same list.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from datetime import datetime, timedelta

from alerts.catalog import Drug, DrugCatalog, Form
from alerts.model import Exposure, RuleConfig, StoredOrder

# RXA-20 (HL7 table 0322): NA not administered, RE refused. CP complete / PA partial: given.
NOT_GIVEN = frozenset({"NA", "RE"})
# HL7 table 0162 routes that are by mouth or enteral (an oral bisphosphonate's form).
ORAL_ROUTES = frozenset(
    {"PO", "ORAL", "OR", "BY MOUTH", "NG", "OG", "GT", "GTT", "PEG", "J", "JT", "SL", "ENTERAL"}
)
# Injections that are parenteral but not intravenous (denosumab, romosozumab: SC).
_OTHER_PARENTERAL = frozenset(
    {"SC", "SQ", "SUBQ", "SUBCUT", "SUBCUTANEOUS", "IM", "INTRAMUSCULAR", "ID"}
)

CANCEL = frozenset({"CA", "CR", "OC"})
DISCONTINUE = frozenset({"DC", "DR", "OD"})
HOLD = frozenset({"HD", "HR", "OH"})
REACTIVATE = frozenset({"NW", "RL"})

# Messages at the same instant: set the order first, then hold, discontinue, cancel.
_RANK = {**{c: 1 for c in HOLD}, **{c: 2 for c in DISCONTINUE}, **{c: 3 for c in CANCEL}}


@dataclass
class _OrderState:
    drug: str | None = None
    route: str = ""
    dose_at: datetime | None = None
    end_at: datetime | None = None
    provider: str = ""
    starts: list[datetime] = field(default_factory=list)
    cancelled: bool = False
    off: list[list[datetime | None]] = field(default_factory=list)  # [from, until or None]
    administrations: list[StoredOrder] = field(default_factory=list)

    def set_from(self, order: StoredOrder) -> None:
        self.drug = order.drug
        self.route = order.route
        self.dose_at = order.dose_at
        self.end_at = order.end_at
        self.provider = order.ordering_provider
        self.starts.append(order.dose_at)

    def stop(self, at: datetime) -> None:
        if not self.off or self.off[-1][1] is not None:
            self.off.append([at, None])

    def resume(self, at: datetime) -> None:
        if self.off and self.off[-1][1] is None:
            start = self.off[-1][0]
            assert start is not None
            self.off[-1][1] = max(at, start)

    def is_off(self, moment: datetime) -> bool:
        return any(
            start is not None and start <= moment and (until is None or moment < until)
            for start, until in self.off
        )


def _sort_key(order: StoredOrder) -> tuple[object, ...]:
    control = order.order_control.upper()
    return (
        order.message_time,
        _RANK.get(control, 0),
        order.administered,
        order.dose_at,
        control,
        order.drug,
        order.route,
        order.end_at is None,
        order.end_at or order.dose_at,
        order.ordering_provider,
    )


def _replay(messages: Iterable[StoredOrder]) -> _OrderState:
    state = _OrderState()
    for order in sorted(messages, key=_sort_key):
        control = order.order_control.upper()
        if order.administered:
            if order.completion_status.strip().upper() in NOT_GIVEN:
                continue  # a dose that was not given (or refused) opens no window
            state.administrations.append(order)
            if state.drug is None:
                state.drug, state.route = order.drug, order.route
                state.provider = order.ordering_provider
            continue
        if control in CANCEL:
            state.cancelled = True
        elif control in DISCONTINUE or control in HOLD:
            state.stop(order.message_time)
        else:
            if control in REACTIVATE:
                state.cancelled = False
                state.resume(order.message_time)
            state.set_from(order)
            continue
        if state.drug is None:  # the new-order message never arrived: keep what this one says
            state.set_from(order)
    return state


def _counts_as_parenteral(drug: Drug, route: str, config: RuleConfig) -> bool:
    if drug.drug_class != "iv_iron" or not route.strip():
        return True  # IV iron products are parenteral-only; an empty route counts
    return route.strip().upper() in {r.upper() for r in config.parenteral_routes}


def _subtract(
    start: datetime, end: datetime, off: Sequence[list[datetime | None]]
) -> list[tuple[datetime, datetime]]:
    """[start, end] minus the off periods, as closed pieces."""
    pieces = [(start, end)]
    for o_start, o_until in off:
        assert o_start is not None
        nxt: list[tuple[datetime, datetime]] = []
        for p0, p1 in pieces:
            if o_start > p1 or (o_until is not None and o_until <= p0):
                nxt.append((p0, p1))
                continue
            if p0 < o_start:
                nxt.append((p0, o_start))
            if o_until is not None and o_until <= p1:
                nxt.append((o_until, p1))
        pieces = nxt
    return pieces


def _merge(intervals: list[tuple[datetime, datetime]]) -> list[tuple[datetime, datetime]]:
    merged: list[tuple[datetime, datetime]] = []
    for start, end in sorted(intervals):
        if merged and start <= merged[-1][1]:
            merged[-1] = (merged[-1][0], max(merged[-1][1], end))
        else:
            merged.append((start, end))
    return merged


def route_kind(route: str, config: RuleConfig) -> str:
    """ "parenteral", "oral", or "" when the route is empty or not recognised."""
    text = route.strip().upper()
    if not text:
        return ""
    if text in _OTHER_PARENTERAL or text in {r.upper() for r in config.parenteral_routes}:
        return "parenteral"
    return "oral" if text in ORAL_ROUTES else ""


def _exposures_of_order(
    key: str, state: _OrderState, drugs: DrugCatalog, config: RuleConfig, now: datetime
) -> list[Exposure]:
    out: list[Exposure] = []
    if state.drug is None:
        return out
    drug = drugs.get(state.drug)
    if drug is None:
        return out

    def emit(d: Drug, start: datetime, end: datetime, provider: str) -> None:
        out.append(Exposure(d.key, d.drug_class, start, end, key, provider))

    if drug.drug_class == "iv_iron":
        window = timedelta(days=config.iron_window_days)
        if state.administrations:
            for given in state.administrations:
                d = drugs.get(given.drug) or drug
                if _counts_as_parenteral(d, given.route or state.route, config):
                    emit(d, given.dose_at, given.dose_at + window, given.ordering_provider)
        elif _scheduled_dose_stands(state) and _counts_as_parenteral(drug, state.route, config):
            assert state.dose_at is not None
            emit(drug, state.dose_at, state.dose_at + window, state.provider)
        return out

    def given_forms(order: StoredOrder) -> tuple[Drug, tuple[Form, ...]]:
        d = drugs.get(order.drug) or drug  # an RAS may name the brand the RDE did not
        return d, d.forms(route_kind(order.route or state.route, config))

    order_forms = drug.forms(route_kind(state.route, config))
    administered = [(g, *given_forms(g)) for g in state.administrations]
    forms = dict.fromkeys([*order_forms, *(f for _, _, fs in administered for f in fs)])
    for form in forms:
        if form.schedule == "single":
            if administered:
                for g, d, fs in administered:
                    if form in fs:
                        emit(d, g.dose_at, g.dose_at + _single(form), g.ordering_provider)
            elif form in order_forms and _scheduled_dose_stands(state):
                assert state.dose_at is not None
                emit(drug, state.dose_at, state.dose_at + _single(form), state.provider)
            continue
        # ongoing: [start, end or stop or now] minus held periods, each piece + grace
        pieces: list[tuple[datetime, datetime]] = []
        if form in order_forms and not state.cancelled and state.starts:
            start = min(state.starts)
            end = state.end_at if state.end_at is not None else now
            if end >= start:
                pieces.extend(_subtract(start, end, state.off))
        pieces.extend((g.dose_at, g.dose_at) for g, _, fs in administered if form in fs)
        grace = timedelta(days=form.grace_days)
        for p0, p1 in _merge([(p0, p1 + grace) for p0, p1 in pieces]):
            emit(drug, p0, p1, state.provider)
    return out


def _single(form: Form) -> timedelta:
    return timedelta(days=form.effect_days + form.grace_days)


def _scheduled_dose_stands(state: _OrderState) -> bool:
    """The order's scheduled dose happened as far as we know: not cancelled, not held or
    discontinued at its time."""
    return not state.cancelled and state.dose_at is not None and not state.is_off(state.dose_at)


def derive_exposures(
    orders: Sequence[StoredOrder], drugs: DrugCatalog, config: RuleConfig, now: datetime
) -> list[Exposure]:
    """Exposures of one patient from all their stored order messages (see the module doc).

    Pure and deterministic: sorted by start, end, drug and order key. Never raises for
    unknown drugs or order controls (unknown controls are treated as updates).
    """
    by_key: dict[str, list[StoredOrder]] = {}
    for order in orders:
        by_key.setdefault(order.order_key, []).append(order)
    exposures: list[Exposure] = []
    for key in sorted(by_key):
        exposures.extend(_exposures_of_order(key, _replay(by_key[key]), drugs, config, now))
    exposures.sort(key=lambda e: (e.start, e.end, e.drug, e.order_key, e.ordering_provider))
    return exposures
