"""A reference evaluator of the interaction rule, written as plainly as possible from
/work/shared/CLINICAL.md ("Windows", "Default thresholds", "Laboratory codes and units",
"Edge semantics"). It shares no code with ``alerts/``: plain dicts in, a dict out, its own
units, thresholds, drug table, windows and order-message replay.

It is the oracle of tests/alerts/reference/test_rule_matches_reference.py. It only has to be right
on the histories that property generates; the generator stays inside what CLINICAL.md decides
(the comments there say where the generated space is restricted and why).

Input shapes (all times timezone-aware datetimes):

- an order message: ``{"key", "drug", "control", "route", "dose_at", "end_at", "sent",
  "administered", "status"}`` (``control`` ORC-1; ``administered`` True for an RXA of an RAS
  with ``status`` RXA-20; ``end_at`` may be None);
- a result: ``{"key", "analyte", "value", "comparator", "unit", "status", "at", "specimen"}``
  (``value`` the decimal text the lab sent, or None).

Output: ``{(analyte, episode_start): (severity, backfilled)}``.
"""

from __future__ import annotations

from datetime import datetime, timedelta
from decimal import Decimal
from fractions import Fraction

# CLINICAL.md "Drugs": only parenteral iron counts.
IRON_DRUGS = {"ferric_carboxymaltose", "iron_sucrose"}
# An iron product is parenteral-only, so an order with no route is an IV dose (route from the
# catalog); PO on an iron order is oral iron and never counts.
IRON_ROUTES_THAT_COUNT = {"IV", ""}

# CLINICAL.md "Drugs": the effect interval of each antiresorptive, by route.
#   ("single", days): each dose protects [dose, dose + days]
#   ("ongoing", days): the order protects while active + days
ANTIRESORPTIVES = {
    "denosumab_prolia": {"SC": ("single", 210)},  # Prolia: 6 months + grace (default 210 days)
    "zoledronic_acid": {"IV": ("single", 365)},  # Reclast: 12 months (default 365 days)
    "alendronate": {"PO": ("ongoing", 30)},  # PO weekly: while the order is active + 30 days
    # Boniva: "3 months IV; PO while active + 30 days"
    "ibandronate": {"IV": ("single", 90), "PO": ("ongoing", 30)},
}

IRON_WINDOW = timedelta(days=28)  # CLINICAL.md "Windows": [dose, dose + 28 days]
STALE_AFTER = timedelta(days=7)  # "older than 7 days when it is processed" -> worklist
BOTH_LOW_WITHIN = timedelta(hours=72)  # "Both minerals low within 72 h: one tier higher"
# Albumin correction "where possible": the configured pairing window (a parameter of the
# rule, 48 h by default; CLINICAL.md gives no number, so it is passed in like a threshold).
ALBUMIN_PAIRING = timedelta(hours=48)

COUNTED = {"F", "C", "U"}  # "a final or corrected result"; U = changed to final (table 0085)

# CLINICAL.md "Default thresholds": (critical, high, warning) lower limits.
THRESHOLDS = {
    "phosphate": (Fraction("1.0"), Fraction("2.0"), Fraction("2.5")),  # mg/dL
    "calcium": (Fraction("7.0"), Fraction("8.0"), Fraction("8.5")),  # mg/dL
    "ionized_calcium": (Fraction("0.9"), Fraction("1.0"), Fraction("1.12")),  # mmol/L
}
TIERS = ["warning", "high", "critical"]

# CLINICAL.md "Laboratory codes and units": factors to the thresholds' units.
TO_THRESHOLD_UNIT = {
    ("phosphate", "mg/dl"): Fraction(1),
    ("phosphate", "mmol/l"): Fraction("3.097"),  # 1 mmol/L = 3.097 mg/dL
    ("calcium", "mg/dl"): Fraction(1),
    ("calcium", "mmol/l"): Fraction("4.008"),  # 1 mmol/L = 4.008 mg/dL
    ("corrected_calcium", "mg/dl"): Fraction(1),
    ("corrected_calcium", "mmol/l"): Fraction("4.008"),
    ("ionized_calcium", "mmol/l"): Fraction(1),
    ("albumin", "g/dl"): Fraction(1),
    ("albumin", "g/l"): Fraction(1, 10),  # 1 g/dL = 10 g/L
}


def unit_key(unit: str) -> str:
    """`mg/dL`, `MG/DL`, `mg/dl`, ` mmol / L ` ... -> one spelling."""
    return unit.replace(" ", "").lower()


def number(text: str) -> Fraction:
    return Fraction(Decimal(text))


# ---------------------------------------------------------------------------------------
# orders -> iron doses and antiresorptive effect intervals


def minus(piece: tuple[datetime, datetime], gap: tuple[datetime, datetime | None]):
    """The parts of the closed interval ``piece`` outside ``[gap start, gap end)``."""
    start, end = piece
    g0, g1 = gap
    out = []
    if start < g0:
        out.append((start, min(end, g0)))
    if g1 is not None and g1 <= end:
        out.append((max(start, g1), end))
    return out


def replay(messages: list[dict]) -> dict:
    """One order's RDE messages (NW, then DC / CA / HD [RL]) -> what is known about it."""
    messages = sorted(messages, key=lambda m: m["sent"])
    new = messages[0]
    assert new["control"] == "NW"
    order = {
        "drug": new["drug"],
        "route": new["route"].upper(),
        "dose_at": new["dose_at"],
        "end_at": new["end_at"],
        "cancelled": False,
        "off": [],  # (from, until or None): discontinued or held
    }
    for m in messages[1:]:
        if m["control"] == "CA":
            order["cancelled"] = True
        elif m["control"] in ("DC", "HD"):
            order["off"].append((m["sent"], None))
        elif m["control"] == "RL":  # release of the hold
            held_from, _ = order["off"].pop()
            order["off"].append((held_from, m["sent"]))
    return order


def scheduled_dose_given(order: dict) -> bool:
    if order["cancelled"]:
        return False
    for off_from, off_until in order["off"]:
        if off_from <= order["dose_at"] and (off_until is None or order["dose_at"] < off_until):
            return False  # discontinued or held before the dose: it was not given
    return True


def active_pieces(order: dict, now: datetime) -> list[tuple[datetime, datetime]]:
    """Where an ongoing order is active: start to end (or now), minus stops and holds."""
    if order["cancelled"]:
        return []
    end = order["end_at"] if order["end_at"] is not None else now
    if end < order["dose_at"]:
        return []
    pieces = [(order["dose_at"], end)]
    for gap in order["off"]:
        pieces = [part for piece in pieces for part in minus(piece, gap)]
    return pieces


def exposures(messages: list[dict], now: datetime) -> tuple[list, list]:
    """(iron dose times, antiresorptive effect intervals) of one patient."""
    by_key: dict[str, list[dict]] = {}
    for m in messages:
        by_key.setdefault(m["key"], []).append(m)
    iron_doses: list[datetime] = []
    effect: list[tuple[datetime, datetime]] = []
    for msgs in by_key.values():
        if msgs[0]["administered"]:
            # An RAS order: each administration is a dose that happened, unless RXA-20 says
            # NA (not administered) or RE (refused): then it opens no window.
            for m in msgs:
                if m["status"] in ("NA", "RE"):
                    continue
                route = m["route"].upper()
                if m["drug"] in IRON_DRUGS:
                    if route in IRON_ROUTES_THAT_COUNT:
                        iron_doses.append(m["dose_at"])
                else:
                    _, days = ANTIRESORPTIVES[m["drug"]][route]
                    # a single dose protects `days`; one dose of an oral drug is its order
                    # being active at that instant, + 30 days
                    effect.append((m["dose_at"], m["dose_at"] + timedelta(days=days)))
            continue
        order = replay(msgs)
        if order["drug"] in IRON_DRUGS:
            if order["route"] in IRON_ROUTES_THAT_COUNT and scheduled_dose_given(order):
                iron_doses.append(order["dose_at"])
            continue
        kind, days = ANTIRESORPTIVES[order["drug"]][order["route"]]
        if kind == "single":
            if scheduled_dose_given(order):
                effect.append((order["dose_at"], order["dose_at"] + timedelta(days=days)))
        else:
            for start, end in active_pieces(order, now):
                effect.append((start, end + timedelta(days=days)))
    return iron_doses, effect


def episodes(doses: list[datetime]) -> dict[datetime, datetime]:
    """Dose time -> its episode's first dose: a dose inside an open window extends it."""
    first_of: dict[datetime, datetime] = {}
    first = end = None
    for dose in sorted(doses):
        if end is None or dose > end:
            first, end = dose, dose + IRON_WINDOW
        else:
            end = max(end, dose + IRON_WINDOW)
        first_of[dose] = first
    return first_of


# ---------------------------------------------------------------------------------------
# results


def counts(r: dict) -> bool:
    return r["status"] in COUNTED and r["value"] is not None


def in_threshold_unit(r: dict) -> Fraction:
    return number(r["value"]) * TO_THRESHOLD_UNIT[(r["analyte"], unit_key(r["unit"]))]


def tier(analyte: str, value: Fraction, comparator: str) -> int | None:
    """0 warning, 1 high, 2 critical, None: not low. "<x" is strictly below x."""
    critical, high, warning = THRESHOLDS[analyte]
    below = (lambda limit: value <= limit) if comparator == "<" else (lambda limit: value < limit)
    if below(critical):
        return 2
    if below(high):
        return 1
    if below(warning):
        return 0
    return None


def evaluate(messages: list[dict], results: list[dict], now: datetime) -> dict:
    doses, effect = exposures(messages, now)
    first_of = episodes(doses)

    albumins = [
        (r["at"], in_threshold_unit(r))
        for r in results
        if r["analyte"] == "albumin" and counts(r) and r["comparator"] == ""
    ]
    lab_corrected = [r for r in results if r["analyte"] == "corrected_calcium" and counts(r)]

    # Every low mineral result with its tier and its episode, if it qualifies.
    low = []  # (analyte, time, tier, episode)
    for r in results:
        if r["analyte"] not in ("phosphate", "calcium", "ionized_calcium", "corrected_calcium"):
            continue
        if not counts(r) or r["comparator"] == ">":
            continue
        analyte = "calcium" if r["analyte"] == "corrected_calcium" else r["analyte"]
        value = in_threshold_unit(r)
        if r["analyte"] == "calcium":
            # The lab's own corrected calcium of this specimen replaces this total.
            if any(
                (c["specimen"] != "" and c["specimen"] == r["specimen"]) or c["at"] == r["at"]
                for c in lab_corrected
            ):
                continue
            near = [(abs(at - r["at"]), alb) for at, alb in albumins]
            near = [(gap, alb) for gap, alb in near if gap <= ALBUMIN_PAIRING]
            if near:
                albumin = min(near)[1]
                value = value + Fraction("0.8") * (Fraction("4.0") - albumin)
        grade = tier(analyte, value, r["comparator"])
        if grade is None:
            continue
        t = r["at"]
        qualifying = [
            d
            for d in doses
            if d <= t <= d + IRON_WINDOW and any(a0 <= t and a1 >= d for a0, a1 in effect)
        ]
        if qualifying:
            low.append((analyte, t, grade, first_of[qualifying[0]]))

    findings: dict = {}
    groups: dict = {}
    for analyte, t, grade, episode in low:
        partners = ("calcium", "ionized_calcium") if analyte == "phosphate" else ("phosphate",)
        both_low = any(
            other in partners and abs(other_t - t) <= BOTH_LOW_WITHIN
            for other, other_t, _, _ in low
        )
        if both_low:
            grade = min(grade + 1, 2)
        stale = now - t > STALE_AFTER
        groups.setdefault((analyte, episode), []).append((grade, stale))
    for key, members in groups.items():
        fresh = [grade for grade, stale in members if not stale]
        if fresh:
            findings[key] = (TIERS[max(fresh)], False)
        else:
            findings[key] = (TIERS[max(grade for grade, _ in members)], True)
    return findings
