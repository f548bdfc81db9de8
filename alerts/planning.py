"""Decide what to tell people after an evaluation: a pure function of stored state and findings.

Like Alertmanager's ``needsUpdate``: the previous state of each alert of this patient (keyed by
dedup key) plus the findings that hold now give, per alert, at most one event:

| previous status       | finding now                          | event      |
| --------------------- | ------------------------------------ | ---------- |
| (none)                | present                              | alert      |
| open                  | severity higher or value lower       | update     |
| open                  | same or better                       | (nothing)  |
| worklist              | no longer backfilled (fresh result)  | alert      |
| worklist              | still backfilled                     | (nothing)  |
| resolved              | present                              | alert      |
| open / worklist       | absent                               | resolved   |
| (any other status)    | as "open"                            |            |
| resolved              | absent                               | (nothing)  |

A finding that is new and ``backfilled`` is still planned as "alert": whether it pages or goes
to the worklist is the service's routing decision, made from ``finding.backfilled``. An
unknown stored status (say "acknowledged") is treated as "open": worsening still notifies and
disappearance still resolves.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence

from alerts.model import AlertState, Finding, NotificationPlan

# Values are compared in the canonical unit; float noise from unit conversion is not "lower".
_VALUE_EPSILON = 1e-9


def _event(previous: AlertState | None, finding: Finding) -> str | None:
    if previous is None:
        return "alert"
    status = previous.status.strip().lower()
    if status == "resolved":
        return "alert"
    if status == "worklist":
        return None if finding.backfilled else "alert"
    worse = finding.severity > previous.severity or (
        finding.value_canonical < previous.value_canonical - _VALUE_EPSILON
    )
    return "update" if worse else None


def plan_notifications(
    previous: Mapping[str, AlertState], findings: Sequence[Finding]
) -> list[NotificationPlan]:
    """Events to send for one patient, sorted by dedup key (see the module table). Never raises."""
    plans: list[NotificationPlan] = []
    current = {f.dedup_key: f for f in findings}
    for key in sorted(set(current) | set(previous)):
        finding = current.get(key)
        state = previous.get(key)
        if finding is None:
            if state is not None and state.status.strip().lower() != "resolved":
                plans.append(NotificationPlan("resolved", None, key))
            continue
        event = _event(state, finding)
        if event is not None:
            plans.append(NotificationPlan(event, finding, key))
    return plans
