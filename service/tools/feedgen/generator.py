"""generate_feed: a deterministic synthetic hospital feed with planted interaction cases."""

from __future__ import annotations

import gc
import hashlib
import random
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta

from service.tools.feedgen.builder import Item, RecordBuilder
from service.tools.feedgen.catalog import (
    ALB,
    BACKGROUND_ANTIRESORPTIVE,
    BACKGROUND_IRON,
    BACKGROUND_RANGES,
    BMP,
    CALCIUM,
    CBC,
    CMP,
    FAMILY_NAMES,
    GIVEN_NAMES,
    LOW_RANGES,
    MG,
    OTHER_DRUGS,
    PHOS,
    SERVICES,
    WARDS,
    Panel,
    body_table,
    result_body,
    value_grid,
)
from service.tools.feedgen.hl7 import PatientSegments, patient_segments
from service.tools.feedgen.model import Feed
from service.tools.feedgen.noise import with_noise
from service.tools.feedgen.planted import (
    DAY,
    HOUR,
    VARIANTS,
    case_extent,
    late_order_for,
    plant_case,
)

SPAN = 35 * DAY  # the feed covers 35 days of event time from `start`
CORRECTION_RATE = 0.002  # "a few" corrected results: 2 per 1000 records, at least 1

# Message mix of the background (cumulative): chemistry 70 %, CBC 15 %, minerals 5 %, RDE 10 %.
_CHEM, _CBC, _MINOR = 0.70, 0.85, 0.90


def _patients(rng: random.Random, count: int) -> list[PatientSegments]:
    base = rng.randrange(10_000_000, 90_000_000 - count)
    rand = rng.random
    first_birth = date(1930, 1, 1).toordinal()
    out = []
    for i in range(count):
        ward = WARDS[int(rand() * len(WARDS))]
        birth = date.fromordinal(first_birth + int(rand() * 25_000))
        n = base + i
        out.append(
            patient_segments(
                mrn=f"MRN{n:08d}",
                ssn=f"999-{n // 10_000 % 100:02d}-{n % 10_000:04d}",
                family=FAMILY_NAMES[int(rand() * len(FAMILY_NAMES))],
                given=GIVEN_NAMES[int(rand() * len(GIVEN_NAMES))],
                middle=GIVEN_NAMES[int(rand() * len(GIVEN_NAMES))][0],
                birth_date=f"{birth.year:04d}{birth.month:02d}{birth.day:02d}",
                sex="FM"[rand() < 0.5],
                street=f"{1 + int(rand() * 998)} TEST ST",
                location=f"{ward}^{100 + int(rand() * 600)}^{'AB'[rand() < 0.5]}^GH",
                patient_class="I",
                service=SERVICES.get(ward, "MED"),
            )
        )
    return out


def generate_feed(
    *,
    messages: int = 1000,
    patients: int = 500,
    planted: int = 5,
    seed: int = 7,
    start: datetime | None = None,
    duplicates: float = 0.01,
    garbage: int = 0,
    late_orders: bool = True,
    keyed: bool = True,
    oru_topic: str = "hl7.oru",
    rde_topic: str = "hl7.rde",
    recent_cases: bool = False,
) -> Feed:
    """Build a feed of about `messages` records over 35 days from `start` (pure CPU).

    `patients` counts every distinct patient, planted ones included. Output is a function
    of (all arguments, seed, start); `start` defaults to now (UTC) minus 40 days truncated
    to the minute, so pass it explicitly for reproducible bytes. `recent_cases`: every planted
    case ends in the feed's last days instead of anywhere in it, so that a feed ending now
    pages under the wall clock (a result older than the backfill limit only reaches the
    worklist).

    Raises ValueError for a naive `start`, negative counts, `duplicates` outside [0, 1) or
    fewer than `planted + 1` patients.
    """
    if start is None:
        start = (datetime.now(UTC) - timedelta(days=40)).replace(second=0, microsecond=0)
    if start.tzinfo is None:
        raise ValueError("start must be timezone-aware (for example datetime(..., tzinfo=UTC))")
    if messages < 0 or planted < 0 or garbage < 0:
        raise ValueError("messages, planted and garbage must be >= 0")
    if not 0 <= duplicates < 1:
        raise ValueError("duplicates must be a fraction in [0, 1)")
    if patients < planted + 1:
        raise ValueError(f"patients must be at least planted + 1 = {planted + 1}")

    with _gc_paused():
        return _generate(
            messages=messages,
            patients=patients,
            planted=planted,
            seed=seed,
            start=start,
            duplicates=duplicates,
            garbage=garbage,
            late_orders=late_orders,
            keyed=keyed,
            oru_topic=oru_topic,
            rde_topic=rde_topic,
            recent_cases=recent_cases,
        )


@contextmanager
def _gc_paused() -> Iterator[None]:
    """Pause the cyclic garbage collector while the feed is built.

    Generation allocates hundreds of thousands of acyclic strings and tuples; the collector
    would rescan them again and again for nothing (measured: ~20 % of the run time).
    """
    was_enabled = gc.isenabled()
    gc.disable()
    try:
        yield
    finally:
        if was_enabled:
            gc.enable()


def _generate(
    *,
    messages: int,
    patients: int,
    planted: int,
    seed: int,
    start: datetime,
    duplicates: float,
    garbage: int,
    late_orders: bool,
    keyed: bool,
    oru_topic: str,
    rde_topic: str,
    recent_cases: bool,
) -> Feed:
    rng = random.Random(seed)
    start_sec = int(start.timestamp())
    end_sec = start_sec + SPAN
    token = hashlib.sha256(f"{seed}|{start_sec}".encode()).hexdigest()[:4].upper()
    builder = RecordBuilder(rng, token, oru_topic=oru_topic, rde_topic=rde_topic, keyed=keyed)

    pool = _patients(rng, patients)
    order = list(range(patients))
    rng.shuffle(order)
    planted_patients = [pool[i] for i in order[:planted]]

    groups = _Groups.split([pool[i] for i in order[planted:]])

    items: list[Item] = []
    cases = []
    for index, patient in enumerate(planted_patients):
        variant = VARIANTS[index % len(VARIANTS)]
        first, last = case_extent(variant)
        slack = SPAN - (last - first) - 12 * HOUR
        if recent_cases:  # the case's last event (its late order, if any) 6-12 h before the end
            iron_sec = end_sec - last - 6 * HOUR - int(rng.random() * 6 * HOUR)
        else:
            iron_sec = start_sec + 6 * HOUR - first + int(rng.random() * max(0, slack))
        case_items, case = plant_case(
            builder,
            index=index,
            patient=patient,
            iron_sec=iron_sec,
            late_order=late_order_for(index, late_orders),
        )
        items.extend(case_items)
        cases.append(case)

    n_dup = round(messages * duplicates)
    n_corr = max(1, round(messages * CORRECTION_RATE)) if messages >= 100 else 0
    n_background = max(0, messages - len(items) - n_dup - garbage - n_corr)
    if n_background == 0:
        n_corr = 0
    corrections = _background(builder, items, groups, start_sec, n_background)
    for source in rng.sample(corrections, min(n_corr, len(corrections))):
        items.append(_correction(builder, source, end_sec))

    items.sort(key=lambda item: (item[0], item[1]))
    records = with_noise(
        rng, [record for _, _, record in items], n_dup, garbage, (oru_topic, rde_topic)
    )
    return Feed(tuple(records), tuple(cases))


@dataclass(frozen=True, slots=True)
class _Groups:
    """Disjoint background patient groups, so no unplanned alert can arise.

    IV iron only, antiresorptive only (5 % each), negative controls with low calcium or
    phosphate and no exposure at all (2.5 %), and the plain rest. Only plain patients'
    results are corrected, so a correction never touches a low value.
    """

    background: list[PatientSegments]
    iron: list[PatientSegments]
    antiresorptive: list[PatientSegments]
    control_keys: frozenset[bytes]
    plain_keys: frozenset[bytes]

    @classmethod
    def split(cls, background: list[PatientSegments]) -> _Groups:
        n = max(1, len(background) // 20) if len(background) >= 4 else 0
        controls = background[2 * n : 2 * n + max(1, n // 2)]
        plain = background[2 * n + len(controls) :]
        return cls(
            background=background,
            iron=background[:n],
            antiresorptive=background[n : 2 * n],
            control_keys=frozenset(p.key for p in controls),
            plain_keys=frozenset(p.key for p in plain),
        )


# (patient, msg_sec, obs_sec, panel, numbered OBX lines, calcium grid index, sequence no.)
_Source = tuple[PatientSegments, int, int, Panel, list[str], int, int]
# A pool of finished OBX line lists per panel: (lines, calcium grid index or -1).
_Pool = list[tuple[list[str], int]]


def _pool(panel: Panel, rng: random.Random, size: int, low: bool) -> _Pool:
    """`size` random result sets for `panel`; with `low`, calcium/phosphate may be low.

    Drawing whole panels from a pool (instead of every value per message) keeps the hot loop
    at one random draw per panel; a few hundred combinations are plenty of variety.
    """
    columns = []
    for i, test in enumerate(panel.tests, 1):
        normal = [f"OBX|{i}{b}" for b in body_table(test, *BACKGROUND_RANGES[test])]
        low_range = LOW_RANGES.get(test) if low else None
        low_lines = [f"OBX|{i}{b}" for b in body_table(test, *low_range)] if low_range else []
        columns.append((normal, low_lines, test is CALCIUM))
    pool: _Pool = []
    rand = rng.random
    for _ in range(size):
        lines = []
        calcium_index = -1
        for normal, low_lines, is_calcium in columns:
            if low_lines and rand() < 0.5:
                lines.append(low_lines[int(rand() * len(low_lines))])
                continue
            j = int(rand() * len(normal))
            if is_calcium:
                calcium_index = j
            lines.append(normal[j])
        pool.append((lines, calcium_index))
    return pool


def _background(
    builder: RecordBuilder, items: list[Item], groups: _Groups, start_sec: int, count: int
) -> list[_Source]:
    """Append `count` background records to `items`; return correction candidates.

    This is the throughput path: tables of finished OBX segments are built once, so each
    message costs a few random draws, two timestamps and one string build.
    """
    background = groups.background
    if count == 0 or not background:
        return []
    iron_group, ar_group = groups.iron, groups.antiresorptive
    control_keys, plain_keys = groups.control_keys, groups.plain_keys
    rng = builder.rng
    rand = rng.random
    times = sorted(start_sec + int(rand() * SPAN) for _ in range(count))
    times[0] = start_sec  # the first message's event time is `start`
    size = max(32, min(1024, count // 8))
    panels = (CMP, BMP, CBC, PHOS, MG, ALB)
    normal = [_pool(p, rng, size, low=False) for p in panels]
    low = [_pool(p, rng, max(8, size // 16), low=True) for p in panels]
    n_patients = len(background)
    sources: list[_Source] = []
    oru = builder.oru
    rde = builder.rde
    append = items.append
    for msg_sec in times:
        r = rand()
        if r < _MINOR:
            patient = background[int(rand() * n_patients)]
            if r < _CHEM:
                p = 0 if rand() < 0.3 else 1  # CMP or BMP
            elif r < _CBC:
                p = 2
            else:
                m = rand()
                p = 3 if m < 0.5 else (4 if m < 0.75 else 5)  # phosphate, magnesium, albumin
            pool = low[p] if patient.key in control_keys else normal[p]
            lines, calcium_index = pool[int(rand() * len(pool))]
            panel = panels[p]
            obs_sec = msg_sec - 1800 - int(rand() * 9000)
            kind = "oru-relevant" if panel.relevant else "oru-background"
            item = oru(patient, msg_sec, obs_sec, panel.obr4, lines, kind)
            append(item)
            if calcium_index >= 0 and patient.key in plain_keys:
                sources.append((patient, msg_sec, obs_sec, panel, lines, calcium_index, item[1]))
            continue
        # Pharmacy: a few IV iron and antiresorptive orders, each to its own patient group.
        dose_sec = msg_sec + 1800 + int(rand() * 8 * HOUR)
        d = rand()
        if d < 0.12 and iron_group:
            patient = iron_group[int(rand() * len(iron_group))]
            drug, kind = BACKGROUND_IRON[int(rand() * len(BACKGROUND_IRON))], "rde-iron"
        elif d < 0.24 and ar_group:
            patient = ar_group[int(rand() * len(ar_group))]
            drug = BACKGROUND_ANTIRESORPTIVE[int(rand() * len(BACKGROUND_ANTIRESORPTIVE))]
            kind = "rde-antiresorptive"
        else:
            patient = background[int(rand() * n_patients)]
            drug, kind = OTHER_DRUGS[int(rand() * len(OTHER_DRUGS))], "rde-other"
        append(rde(patient=patient, order_sec=msg_sec, dose_sec=dose_sec, drug=drug, kind=kind))
    return sources


def _correction(builder: RecordBuilder, source: _Source, end_sec: int) -> Item:
    """Re-send a background panel with its calcium corrected (OBX-11 "C") by +-0.1..0.2."""
    patient, msg_sec, obs_sec, panel, lines, calcium_index, original = source
    rng = builder.rng
    grid = value_grid(CALCIUM, *BACKGROUND_RANGES[CALCIUM])
    shift = rng.choice((-2, -1, 1, 2))
    new_index = min(len(grid) - 1, max(0, calcium_index + shift))
    if new_index == calcium_index:
        new_index = calcium_index - shift // abs(shift)
    position = panel.tests.index(CALCIUM)
    corrected = list(lines)
    body = result_body(CALCIUM, grid[new_index], status="C")
    corrected[position] = f"OBX|{position + 1}{body}"
    return builder.oru(
        patient,
        min(end_sec, msg_sec + 2 * HOUR + int(rng.random() * 28 * HOUR)),
        obs_sec,
        panel.obr4,
        corrected,
        "correction",
        orders_of=original,
    )
