"""When to page again: a pure function of an alert's escalation state, its policy and ``now``.

PagerDuty's model: a page goes to tier 1; not acknowledged within the policy's timeout for the
alert's severity (critical faster than high), it goes to the next tier; after the last tier the
policy starts again at tier 1, up to ``repeat`` more times, and then stops (``exhausted``, a
visible end, never an endless loop). An acknowledgement stops escalation; one that is not
followed by resolution within ``ack_timeout`` re-pages the tier that acknowledged (the ack is
cleared and escalation resumes from there). Corrective therapy ordered after the alert, a
silence, or resolution stop it for good.

One step per call: after a long outage the job catches up one step per run (each step restarts
the timer) instead of paging every tier at once.
"""

from __future__ import annotations

from collections.abc import Mapping
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


def corrective_stops(
    analyte: str,
    alert_created_at: datetime,
    orders: list[tuple[str, datetime]],
    corrective: Mapping[str, tuple[str, ...]],
) -> tuple[str, datetime] | None:
    """The first corrective order (drug key, ordered at) for ``analyte`` placed at or after the
    alert, or None. ``corrective`` maps analyte → catalog keys (configs/routing.toml)."""
    wanted = set(corrective.get(analyte, ()))
    hits = sorted((at, drug) for drug, at in orders if drug in wanted and at >= alert_created_at)
    if not hits:
        return None
    at, drug = hits[0]
    return drug, at
