"""When to page again: a pure function of an alert's escalation state, its policy and ``now``.

PagerDuty's model: a page goes to tier 1; not acknowledged within the policy's timeout for the
alert's severity (critical faster than high), it goes to the next tier; after the last tier the
policy starts again at tier 1, up to ``repeat`` more times, and then stops (``exhausted``, a
visible end, never an endless loop). An acknowledgement stops escalation; one that is not
followed by resolution within ``ack_timeout`` re-pages the tier that acknowledged (the ack is
cleared and escalation resumes from there). Corrective therapy newly ordered after the alert
(``corrective_stops``: a configured kind and route; a refill of a standing oral supplement is
only noted), a silence, or resolution stop it for good.

One step per call: after a long outage the job catches up one step per run (each step restarts
the timer) instead of paging every tier at once.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from enum import StrEnum

PAGING_SEVERITIES = ("high", "critical")


class Step(StrEnum):
    NONE = "none"
    ESCALATE = "escalate"  # next tier
    REPEAT = "repeat"  # back to tier 1, next round
    ACK_TIMEOUT = "ack-timeout"  # re-page the current tier, clear the ack
    EXHAUSTED = "exhausted"  # policy done: stop, visibly


@dataclass(frozen=True)
class Policy:
    name: str
    timeouts: Mapping[str, timedelta]  # severity → time to wait for an ack
    repeat: int = 0  # how many more times the whole policy runs after the first
    ack_timeout: timedelta | None = None  # None: an ack holds until resolution

    def __post_init__(self) -> None:
        for severity in PAGING_SEVERITIES:
            if severity not in self.timeouts:
                raise ValueError(f"policy {self.name!r}: no timeout for {severity!r}")
            if self.timeouts[severity] <= timedelta(0):
                raise ValueError(f"policy {self.name!r}: {severity} timeout must be > 0")
        if self.timeouts["critical"] > self.timeouts["high"]:
            raise ValueError(f"policy {self.name!r}: critical must escalate no slower than high")
        if self.repeat < 0:
            raise ValueError(f"policy {self.name!r}: repeat must be >= 0")
        if self.ack_timeout is not None and self.ack_timeout <= timedelta(0):
            raise ValueError(f"policy {self.name!r}: ack_timeout must be > 0")


@dataclass(frozen=True)
class EscalationState:
    status: str  # alert status: open | worklist | resolved
    severity: str
    state: str  # "" | active | acked | stopped | exhausted
    paged_at: datetime | None  # when the current step paged
    tier: int = 1
    round: int = 0
    step: int = 0
    acked_at: datetime | None = None
    corrective_at: datetime | None = None
    silenced: bool = False


@dataclass(frozen=True)
class Decision:
    step: Step
    tier: int = 1
    round: int = 0
    number: int = 0  # the step number after this step (part of the notification id)
    due_at: datetime | None = None  # when the next step is due (NONE), for logs and tests
    reason: str = field(default="")


def decide(state: EscalationState, policy: Policy, tiers: int, now: datetime) -> Decision:
    """What to do for one alert at ``now``. Never raises for a well-formed state."""
    if state.status != "open" or state.state in ("", "stopped", "exhausted"):
        return Decision(Step.NONE, state.tier, state.round, state.step, reason="not escalating")
    if state.silenced:
        return Decision(Step.NONE, state.tier, state.round, state.step, reason="silenced")
    if state.corrective_at is not None:
        return Decision(Step.NONE, state.tier, state.round, state.step, reason="corrective")
    if state.severity not in PAGING_SEVERITIES or state.paged_at is None:
        return Decision(Step.NONE, state.tier, state.round, state.step, reason="does not page")
    if state.acked_at is not None:
        if policy.ack_timeout is None:
            return Decision(Step.NONE, state.tier, state.round, state.step, reason="acked")
        due = state.acked_at + policy.ack_timeout
        if now < due:
            return Decision(Step.NONE, state.tier, state.round, state.step, due, "acked")
        return Decision(Step.ACK_TIMEOUT, state.tier, state.round, state.step + 1)
    due = state.paged_at + policy.timeouts[state.severity]
    if now < due:
        return Decision(Step.NONE, state.tier, state.round, state.step, due, "waiting")
    if state.tier < tiers:
        return Decision(Step.ESCALATE, state.tier + 1, state.round, state.step + 1)
    if state.round < policy.repeat:
        return Decision(Step.REPEAT, 1, state.round + 1, state.step + 1)
    return Decision(Step.EXHAUSTED, state.tier, state.round, state.step)


# Corrective therapy (CLINICAL.md "Edge semantics"): only a NEW order placed after the alert,
# of a kind and a route the configuration names, stops escalation. configs/routing.toml
# [corrective] maps each analyte to drug catalog keys; its reserved key ``routes`` lists the
# routes (RXR-1, upper-cased) that count, IV by default ("IV phosphate, IV calcium").
ROUTES_KEY = "routes"
DEFAULT_ROUTES = ("IV", "IVP", "IVPB", "IVF", "IVPUSH", "INTRAVENOUS")
NEW_ORDER = "NW"  # ORC-1 new order; RP/RQ/XO/XX/SC/RL/... are about an order that existed
NOT_GIVEN = frozenset({"NA", "RE"})  # RXA-20 not administered / refused


@dataclass(frozen=True)
class TherapyMessage:
    """One stored pharmacy message about a corrective drug (an RDE, or an RAS administration)."""

    order_key: str
    drug: str  # catalog key
    route: str
    order_control: str  # ORC-1
    dose_at: datetime
    message_time: datetime
    administered: bool = False
    completion_status: str = ""  # RXA-20 of an administration


@dataclass(frozen=True)
class CorrectiveConfig:
    """What stops escalation, per analyte: drug keys, and the routes that count."""

    drugs: Mapping[str, tuple[str, ...]]
    routes: tuple[str, ...] = DEFAULT_ROUTES

    @classmethod
    def of(cls, drugs: Mapping[str, Sequence[str]], routes: Sequence[str] = ()) -> CorrectiveConfig:
        """Drug keys per analyte, and the routes that count (upper-cased). No routes, or an
        empty list, means the IV default: never "every route"."""
        upper = tuple(r.strip().upper() for r in routes if r.strip())
        return cls(
            {analyte: tuple(keys) for analyte, keys in drugs.items()}, upper or DEFAULT_ROUTES
        )

    @classmethod
    def from_routing(
        cls, corrective: Mapping[str, Sequence[str]] | CorrectiveConfig
    ) -> CorrectiveConfig:
        """From a raw ``[corrective]`` table (analyte -> drug keys, plus the reserved
        ``routes``); ``RoutingConfig.corrective``, already built, is returned as it is."""
        if isinstance(corrective, CorrectiveConfig):
            return corrective
        drugs = {analyte: keys for analyte, keys in corrective.items() if analyte != ROUTES_KEY}
        return cls.of(drugs, corrective.get(ROUTES_KEY, ()))


@dataclass(frozen=True)
class CorrectiveCheck:
    """The message that stops escalation (None: none does) and the messages about corrective
    drugs at or after the alert that do not stop it, each with why (noted on the alert)."""

    stop: TherapyMessage | None
    noted: tuple[tuple[TherapyMessage, str], ...] = ()


def _why_not(
    m: TherapyMessage,
    wanted: set[str],
    config: CorrectiveConfig,
    alert_created_at: datetime,
    standing: set[str],
) -> str:
    """The reason ``m`` does not stop escalation, or "" when it does."""
    route_ok = m.route.strip().upper() in config.routes
    if m.administered and m.completion_status.strip().upper() in NOT_GIVEN:
        return "administration not given"
    if m.drug in wanted and route_ok:
        if m.administered:
            return "" if m.dose_at >= alert_created_at else "given before the alert"
        if m.order_control.strip().upper() == NEW_ORDER and m.order_key not in standing:
            return ""
        return "standing order noted (not a new order)"
    if m.order_key in standing:
        return "standing oral supplement noted" if not route_ok else "standing order noted"
    return "route not configured" if m.drug in wanted else "not configured for this analyte"


def corrective_stops(
    analyte: str,
    alert_created_at: datetime,
    messages: Sequence[TherapyMessage],
    config: CorrectiveConfig,
) -> CorrectiveCheck:
    """Whether corrective therapy stops escalation of an ``analyte`` alert created at
    ``alert_created_at`` (CLINICAL.md "Edge semantics"), and what is only noted.

    Stops: a new order (ORC-1 NW, placed at or after the alert, of an order key with no
    message before the alert) or a given administration (RAS, RXA-20 not NA/RE, dose at or
    after the alert), of a drug configured for the analyte, by a configured route. The
    earliest such message wins. Never stops: a refill, renewal, replace/change or status
    message (RP/RQ/XO/XX/SC/RL/...) or a re-sent NW of an order that existed before the alert,
    an oral supplement, a withdrawn or not-given order. Those at or after the alert are
    returned in ``noted``. Pure; never raises.
    """
    wanted = set(config.drugs.get(analyte, ()))
    standing = {m.order_key for m in messages if m.message_time < alert_created_at}
    stops: list[TherapyMessage] = []
    noted: list[tuple[TherapyMessage, str]] = []
    for m in sorted(messages, key=lambda m: (m.message_time, m.dose_at, m.drug, m.order_key)):
        if m.message_time < alert_created_at:
            continue
        why = _why_not(m, wanted, config, alert_created_at, standing)
        if why:
            noted.append((m, why))
        else:
            stops.append(m)
    stop = min(
        stops,
        key=lambda m: (m.dose_at if m.administered else m.message_time, m.drug, m.order_key),
        default=None,
    )
    return CorrectiveCheck(stop, tuple(noted))
