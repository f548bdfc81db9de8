"""From stored pharmacy messages to what the patient actually received, as time intervals.

``derive_exposures`` replays the messages of each order (grouped by ``order_key``) in
``message_time`` order and turns the result into ``Exposure`` intervals:

- IV iron: one exposure per dose, ``[dose, dose + iron_window_days]`` (its risk window).
- antiresorptive and corrective, schedule "single": ``[dose, dose + effect_days + grace_days]``.
- schedule "ongoing": ``[start, (end_at, or discontinue/hold time, or now) + grace_days]``.

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

An order whose messages all carry a drug the catalog does not know gives nothing. Pure: ``now``
is a parameter; output is sorted, so the same messages in any input order give the same list.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from datetime import datetime, timedelta

from alerts.catalog import Drug, DrugCatalog
from alerts.model import Exposure, RuleConfig, StoredOrder

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


def _exposures_of_order(
    key: str, state: _OrderState, drugs: DrugCatalog, config: RuleConfig, now: datetime
) -> list[Exposure]:
    out: list[Exposure] = []
    if state.drug is None:
        return out
    drug = drugs.get(state.drug)
    if drug is None:
        return out

    def extra(d: Drug) -> timedelta:
        if d.drug_class == "iv_iron":
            return timedelta(days=config.iron_window_days)
        if d.schedule == "single":
            return timedelta(days=d.effect_days + d.grace_days)
        return timedelta(days=d.grace_days)

    def emit(d: Drug, start: datetime, end: datetime, provider: str) -> None:
        out.append(Exposure(d.key, d.drug_class, start, end, key, provider))

    if drug.schedule == "single" or drug.drug_class == "iv_iron":
        if state.administrations:
            for given in state.administrations:
                d = drugs.get(given.drug) or drug
                route = given.route or state.route
                if _counts_as_parenteral(d, route, config):
                    emit(d, given.dose_at, given.dose_at + extra(d), given.ordering_provider)
        elif (
            not state.cancelled
            and state.dose_at is not None
            and not state.is_off(state.dose_at)
            and _counts_as_parenteral(drug, state.route, config)
        ):
            emit(drug, state.dose_at, state.dose_at + extra(drug), state.provider)
        return out

    # ongoing
    pieces: list[tuple[datetime, datetime]] = []
    if not state.cancelled and state.starts:
        start = min(state.starts)
        end = state.end_at if state.end_at is not None else now
        if end >= start:
            pieces.extend(_subtract(start, end, state.off))
    pieces.extend((g.dose_at, g.dose_at) for g in state.administrations)
    grace = extra(drug)
    for p0, p1 in _merge([(p0, p1 + grace) for p0, p1 in pieces]):
        emit(drug, p0, p1, state.provider)
    return out


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
