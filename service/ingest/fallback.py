"""Message by message: the fallback when storing a whole batch raised.

Contract (what may block, what it commits):
- ``process_each`` runs one transaction per message through the pipeline and blocks on the
  database (call it from a worker thread on the event loop). Each message's effects, or its
  dead-letter row, are committed in its own transaction before the next one starts.
- It never raises for a message: one the pipeline can neither process nor dead-letter while
  the database answers ``SELECT 1`` comes back as a ``DEAD_LETTER`` of error class
  ``unrecorded`` with a PHI-free reason, and nothing of it is in the database. The caller
  must then keep a copy elsewhere (the consumer: the dead-letter topic; replay: the file)
  before it moves past the message.
- It raises ``DatabaseUnavailable`` only while ``SELECT 1`` fails: the messages before the
  failing one are committed, and the caller re-reads the rest (processing a committed
  message again is a ``DUPLICATE``).
"""

from __future__ import annotations

import logging
from collections.abc import Sequence

from sqlalchemy.engine import Engine

from service.db.engine import database_reachable
from service.ingest.messages import DatabaseUnavailable, Incoming, Outcome, Processed
from service.ingest.pipeline import Pipeline

log = logging.getLogger(__name__)

# error_class of a message the pipeline could neither process nor dead-letter in the database.
UNRECORDED = "unrecorded"


def process_each(pipeline: Pipeline, engine: Engine, items: Sequence[Incoming]) -> list[Processed]:
    """Process ``items`` one message per transaction; results in the same order.

    A failure is blamed on the database, and DatabaseUnavailable raised (the caller pauses
    and retries, skipping nothing), only while ``SELECT 1`` fails. A message whose processing
    reports the database unavailable twice while ``SELECT 1`` works is the message's fault
    (a value the database refuses, wrongly classed as an outage): without this, one such
    message would pause the stream for ever. Blocks (database I/O).
    """
    results: list[Processed] = []
    for item in items:
        failure: Exception | None = None
        for _attempt in range(2):
            try:
                results.extend(pipeline.process_batch([item]))
                failure = None
                break
            except Exception as exc:  # the message's fault, unless the database is away
                if not database_reachable(engine):
                    raise DatabaseUnavailable(type(exc).__name__) from None
                failure = exc
                if not isinstance(exc, DatabaseUnavailable):
                    break
        if failure is not None:
            results.append(_unrecorded(item, failure))
    return results


def _unrecorded(item: Incoming, failure: Exception) -> Processed:
    log.error(
        "message could not be processed nor dead-lettered",
        extra={
            "error": type(failure).__name__,
            "source": item.source,
            "topic": item.topic,
            "partition": item.partition,
            "offset": item.offset,
        },
    )
    return Processed(
        Outcome.DEAD_LETTER,
        reason=f"not recorded: {type(failure).__name__} while processing and dead-lettering",
        error_class=UNRECORDED,
    )
