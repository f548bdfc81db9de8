"""alerts.escalation.decide: a table of states × times (injected clock). Corrective therapy
is tested in tests/alerts/test_escalation.py."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from alerts.escalation import EscalationState, Policy, Step, decide

T0 = datetime(2025, 1, 1, 12, 0, tzinfo=UTC)
POLICY = Policy(
    "p",
    {"critical": timedelta(minutes=10), "high": timedelta(minutes=30)},
    repeat=1,
    ack_timeout=timedelta(hours=8),
)


def state(**kw: object) -> EscalationState:
    base: dict[str, object] = {
        "status": "open",
        "severity": "critical",
        "state": "active",
        "paged_at": T0,
    }
    base.update(kw)
    return EscalationState(**base)  # type: ignore[arg-type]


def m(minutes: float) -> datetime:
    return T0 + timedelta(minutes=minutes)


@pytest.mark.parametrize(
    ("st", "now", "step", "tier", "round_", "number"),
    [
        (state(), m(9.99), Step.NONE, 1, 0, 0),
        (state(), m(10), Step.ESCALATE, 2, 0, 1),  # critical: 10 min
        (state(severity="high"), m(10), Step.NONE, 1, 0, 0),
        (state(severity="high"), m(30), Step.ESCALATE, 2, 0, 1),  # high: 30 min
        (state(tier=2, step=1), m(10), Step.REPEAT, 1, 1, 2),  # last tier → round 2
        (state(tier=2, round=1, step=3), m(10), Step.EXHAUSTED, 2, 1, 3),
        (state(acked_at=m(1)), m(60), Step.NONE, 1, 0, 0),  # ack holds
        (state(acked_at=m(1), step=2), m(1 + 480), Step.ACK_TIMEOUT, 1, 0, 3),
        (state(corrective_at=m(2)), m(60), Step.NONE, 1, 0, 0),
        (state(silenced=True), m(60), Step.NONE, 1, 0, 0),
        (state(status="resolved"), m(60), Step.NONE, 1, 0, 0),
        (state(state="stopped"), m(60), Step.NONE, 1, 0, 0),
        (state(state="exhausted"), m(60), Step.NONE, 1, 0, 0),
        (state(severity="warning"), m(60), Step.NONE, 1, 0, 0),  # warnings never page
    ],
)
def test_decide(
    st: EscalationState, now: datetime, step: Step, tier: int, round_: int, number: int
) -> None:
    d = decide(st, POLICY, tiers=2, now=now)
    assert (d.step, d.tier, d.round, d.number) == (step, tier, round_, number)


def test_one_step_per_call_after_a_long_outage() -> None:
    d = decide(state(), POLICY, tiers=2, now=m(600))
    assert d.step is Step.ESCALATE and d.number == 1


def test_waiting_reports_due_time() -> None:
    assert decide(state(), POLICY, 2, m(1)).due_at == m(10)


@pytest.mark.parametrize(
    "timeouts",
    [
        {"critical": timedelta(minutes=40), "high": timedelta(minutes=30)},  # critical slower
        {"critical": timedelta(0), "high": timedelta(minutes=30)},
        {"high": timedelta(minutes=30)},
    ],
)
def test_invalid_policies(timeouts: dict[str, timedelta]) -> None:
    with pytest.raises(ValueError):
        Policy("bad", timeouts)
