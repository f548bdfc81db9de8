"""Bad input through the whole pipeline, on SQLite and PostgreSQL: it never raises, rejects
into the dead-letter table with a reason, and good messages interleaved with the junk still
page. (Hostile characters field by field: test_field_injection.py.)

The mutation operators live in service.tools.soak.mutate (truncation, wrong separators, binary
junk, 1 MB fields, wrong value types, bogus dates, unknown units, thousands of OBX segments,
dropped and shuffled segments, other encodings, MLLP bytes inside). CI runs a bounded number;
`labsentinel soak --fuzz 100000` runs the same code at scale.
"""

from __future__ import annotations

import random

import pytest
from hypothesis import HealthCheck, example, given, settings
from hypothesis import strategies as st
from sqlalchemy import text

from alerts.identity import split_patient_key
from service.ingest.pipeline import Incoming, Outcome
from service.tools.feedgen import Feed
from service.tools.soak import fuzz_pipeline, mutate


@pytest.mark.slow
def test_mutation_fuzz_of_the_pipeline(database_url: str) -> None:
    report = fuzz_pipeline(2000, seed=3, database_url=database_url)
    assert report.problems == []
    assert report.inputs == 2000
    # The corpus really exercised both sides: plenty rejected, plenty still stored.
    assert report.outcomes["dead_letter"] > 300 and report.outcomes["stored"] > 200
    # A row per dead-lettered message, and one per item dead-lettered alone in a stored one
    # (fuzz_pipeline's audit checks the exact count and reports it as a problem).
    assert report.dead_letter_rows >= report.outcomes["dead_letter"]
    assert report.paged == report.planted == 4


@pytest.mark.slow
@settings(
    max_examples=150,
    deadline=None,
    derandomize=True,
    suppress_health_check=[HealthCheck.function_scoped_fixture],
)
@given(raw=st.binary(max_size=2000))
@example(raw=b"")
@example(raw=b"MSH|^~\\&")
@example(raw=b"\x0b\x1c\r")
@example(raw=b"MSH|^~\\&|A|B|C|D|20250101||ORU^R01|1|P|2.5.1\r" + b"OBX|1|NM|2777-1||x\r" * 3)
def test_arbitrary_bytes_never_raise(app, raw: bytes) -> None:  # type: ignore[no-untyped-def]
    # Unique per example; below 2**31 (a larger Kafka offset is its own test, in tests/safety).
    offset = random.getrandbits(31)
    result = app.pipeline.process(Incoming(raw, "kafka", "fuzz", 0, offset))
    assert result.outcome in set(Outcome)
    if result.outcome is Outcome.DEAD_LETTER:
        assert result.reason and result.error_class
        with app.engine.connect() as connection:
            row = connection.execute(
                text('SELECT reason, error_class FROM dead_letters WHERE "offset" = :o'),
                {"o": offset},
            ).one()
        assert row.reason and row.error_class


@pytest.mark.slow
@settings(
    max_examples=200,
    deadline=None,
    derandomize=True,
    suppress_health_check=[HealthCheck.function_scoped_fixture],
)
@given(index=st.integers(min_value=0), rnd=st.randoms(use_true_random=False))
def test_mutated_feed_messages_never_raise(app, feed: Feed, index: int, rnd) -> None:  # type: ignore[no-untyped-def]
    source = feed.records[index % len(feed.records)].value
    raw = mutate(source, rnd)
    results = app.pipeline.process_batch([Incoming(raw, "replay"), Incoming(source, "replay")])
    assert len(results) == 2
    for result in results:
        if result.outcome is Outcome.DEAD_LETTER:
            assert result.reason and result.error_class


def test_good_messages_page_amid_garbage(app, feed: Feed) -> None:
    """A feed with every other message replaced by junk around it still pages every case."""
    rng = random.Random(5)
    items = []
    for offset, record in enumerate(feed.records):
        items.append(Incoming(record.value, "kafka", "mix", 0, 2 * offset))
        junk = mutate(feed.records[rng.randrange(len(feed.records))].value, rng)
        junk = junk.replace(b"|P|2.5.1", b"J|P|2.5.1")  # its own control id
        items.append(Incoming(junk, "kafka", "mix", 0, 2 * offset + 1))
    notifications = []
    for start in range(0, len(items), 50):
        for result in app.pipeline.process_batch(items[start : start + 50]):
            notifications += result.notifications
    # A notification names the patient by key (identifier and authority); the feed by MRN.
    paged = {
        (split_patient_key(n.patient_id)[0], n.analyte) for n in notifications if n.event == "alert"
    }
    assert {(c.patient_id, c.analyte) for c in feed.planted} <= paged
