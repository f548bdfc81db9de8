"""Kafka offsets are 64-bit. A dead letter at an offset beyond 2**31 (a partition that has
carried two billion messages) must be stored like any other; and until it can be, the
consumer's fallback must not take the database's refusal for an outage and pause for ever."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from service.bootstrap import App
from service.ingest.consumer import UNRECORDED, process_each
from service.ingest.pipeline import Incoming, Outcome
from tests.fuzz.conftest import make_app

BEYOND_INT32 = 2**33


@pytest.fixture
def app(database_url: str) -> Iterator[App]:
    built = make_app(database_url)
    try:
        yield built
    finally:
        built.close()


def test_dead_letter_at_an_offset_beyond_two_to_the_31_is_stored(app: App) -> None:
    result = app.pipeline.process(Incoming(b"not hl7", "kafka", "oru", 0, BEYOND_INT32))
    assert result.outcome is Outcome.DEAD_LETTER and result.error_class != UNRECORDED


def test_consumer_fallback_moves_past_a_message_the_database_refuses(app: App) -> None:
    items = [
        Incoming(b"not hl7", "kafka", "oru", 0, BEYOND_INT32),
        Incoming(b"not hl7 either", "kafka", "oru", 0, 7),
    ]
    first, second = process_each(app.pipeline, app.engine, items)
    # Recorded, or at worst unrecorded (the dead-letter topic then holds the copy); never
    # DatabaseUnavailable while the database answers, which would pause the stream for ever.
    assert first.outcome is Outcome.DEAD_LETTER
    assert second.outcome is Outcome.DEAD_LETTER and second.error_class == "parse"
