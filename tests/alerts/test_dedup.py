"""dedup_key: stable, deterministic, collision-resistant, time-zone independent."""

from __future__ import annotations

import subprocess
import sys
from datetime import UTC, datetime, timedelta, timezone

from alerts.dedup import dedup_key

START = datetime(2025, 3, 1, 9, 0, tzinfo=UTC)
RULE = "iron-antiresorptive-mineral"


def test_golden_value() -> None:
    # pinned: changing the canonical form silently would re-page every open alert
    key = dedup_key(RULE, "MRN-0001", "phosphate", START)
    assert key == "dd74b180dcf9966a554b085002d21875f12de4160e6924b34596d8f4889ffb27"


def test_stable_across_processes() -> None:
    # no salted hash(): another interpreter computes the same key
    code = (
        "from datetime import datetime, UTC; from alerts.dedup import dedup_key; "
        f"print(dedup_key({RULE!r}, 'MRN-0001', 'phosphate', datetime(2025,3,1,9,0,tzinfo=UTC)))"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == dedup_key(RULE, "MRN-0001", "phosphate", START)


def test_same_instant_in_another_zone_same_key() -> None:
    # the episode start is compared as a UTC instant
    local = START.astimezone(timezone(timedelta(hours=10)))
    assert dedup_key(RULE, "p", "calcium", local) == dedup_key(RULE, "p", "calcium", START)


def test_naive_is_utc_and_microseconds_ignored() -> None:
    # a database round trip that drops tzinfo or sub-seconds keeps the key
    naive = START.replace(tzinfo=None, microsecond=123456)
    assert dedup_key(RULE, "p", "calcium", naive) == dedup_key(RULE, "p", "calcium", START)


def test_every_component_matters() -> None:
    # different patient, analyte, episode or rule -> different key; separators cannot collide
    base = dedup_key(RULE, "p1", "phosphate", START)
    assert dedup_key(RULE, "p2", "phosphate", START) != base
    assert dedup_key(RULE, "p1", "calcium", START) != base
    assert dedup_key(RULE, "p1", "phosphate", START + timedelta(seconds=1)) != base
    assert dedup_key("other", "p1", "phosphate", START) != base
    assert dedup_key(RULE, "a|b", "c", START) != dedup_key(RULE, "a", "b|c", START)
