"""A synthetic multi-week episode as HL7: denosumab, then ferric carboxymaltose at ``T0``.

A quiet patient's daily result (``FILLER``) opens every day, so the message clock crosses each
day boundary early in the day, as a live feed would.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from datetime import UTC, datetime, timedelta
from pathlib import Path

from tests.messages import DENOSUMAB, oru, rde

T0 = datetime(2026, 3, 2, 9, 0, tzinfo=UTC)  # the iron dose
MRN = "MRN00004242"
FILLER = "MRN00009999"
PHOSPHATE = {"code": "2777-1", "name": "Phosphate", "unit": "mg/dL", "ref": "2.5-4.5"}
CALCIUM = {"code": "17861-6", "name": "Calcium", "unit": "mg/dL", "ref": "8.5-10.5"}
ROOT = Path(__file__).resolve().parents[3]


def day(n: float, hours: float = 0) -> datetime:
    return T0 + timedelta(days=n, hours=hours)


def phosphate(moment: datetime, value: str) -> bytes:
    return oru(MRN, moment, value=value, **PHOSPHATE)


def calcium(moment: datetime, value: str) -> bytes:
    return oru(MRN, moment, value=value, **CALCIUM)


def episode(*, last_day: int, events: dict[int, list[bytes]]) -> list[bytes]:
    """Denosumab 60 days before ``T0`` and FCM at ``T0``, then per day: the filler at 06:00
    (day -1 onwards) and ``events[day]`` after it."""
    messages = [
        rde(MRN, T0 - timedelta(days=60), drug=DENOSUMAB, route="SC"),
        *events.get(-5, []),
    ]
    for n in range(-1, last_day + 1):
        messages.append(oru(FILLER, day(n, -3), value="3.5", **PHOSPHATE))
        if n == 0:
            messages.append(rde(MRN, T0))
        messages.extend(events.get(n, []))
    return messages


def write(path: Path, messages: list[bytes]) -> Path:
    path.write_bytes(b"\n\n".join(m.replace(b"\r", b"\n") for m in messages))
    return path


def replay(hl7: Path, database_url: str, pages: Path) -> str:
    """``labsentinel replay --clock messages`` as a user runs it; returns the summary line."""
    done = subprocess.run(
        [
            sys.executable,
            "-m",
            "service.cli.main",
            "replay",
            str(hl7),
            "--clock",
            "messages",
            "--database-url",
            database_url,
            "--pages-out",
            str(pages),
        ],
        capture_output=True,
        text=True,
        timeout=120,
        cwd=ROOT,
        env=dict(os.environ),
    )
    assert done.returncode == 0, done.stderr
    return done.stdout.strip().splitlines()[-1]


def read(pages: Path) -> list[dict]:  # type: ignore[type-arg]
    if not pages.exists():
        return []
    return [json.loads(line) for line in pages.read_text().splitlines() if line.strip()]


def brief(page: dict) -> tuple[str, str, str, str]:  # type: ignore[type-arg]
    """(event, what, created day, who) of a JSON line: what is the analyte or reminder label."""
    what = page["analyte"] or page.get("reminder", {}).get("label") or page["rule"]
    created = datetime.fromisoformat(page["created_at"])
    return (page["event"], what, f"day {(created - T0).days}", ",".join(page["recipients"]))
