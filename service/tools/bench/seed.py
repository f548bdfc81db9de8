"""Stored history for the bench: a year of a hospital's chemistry, written straight in SQL.

PostgreSQL only (``generate_series``). Blocking.
"""

from __future__ import annotations

import time

from sqlalchemy import text

from service.db.engine import make_engine
from service.db.migrate import upgrade

SEED_SQL = (
    # Results of 1,000,000 synthetic patients over 400 days, each with the claim of the message
    # that carried it, as a year of a hospital's chemistry would leave them.
    """
    INSERT INTO lab_results (patient_id, result_key, analyte, code, value, comparator,
        value_text, unit, reference_range, abnormal_flags, status, observed_at, received_at,
        message_time, control_id)
    SELECT 'SEED' || (g % 1000000), 'S' || g || '|17861-6', 'calcium', '17861-6', 9.2, '',
        '9.2', 'mg/dL', '8.5-10.5', 'N', 'F',
        (now() AT TIME ZONE 'UTC') - (g % 400) * interval '1 day',
        now() AT TIME ZONE 'UTC', now() AT TIME ZONE 'UTC', 'SEED' || g
    FROM generate_series(:first, :last) AS g
    """,
    """
    INSERT INTO processed_messages (sending_facility, control_id, message_type, processed_at)
    SELECT 'SEED HOSPITAL', 'SEED' || g, 'ORU^R01', now() AT TIME ZONE 'UTC'
    FROM generate_series(:first, :last) AS g
    """,
)


def seed_results(database_url: str, count: int, chunk: int = 1_000_000) -> float:
    """Fill the database with ``count`` stored results (PostgreSQL); return the seconds taken."""
    engine = make_engine(database_url)
    started = time.perf_counter()
    try:
        upgrade(engine)
        for first in range(1, count + 1, chunk):
            last = min(first + chunk - 1, count)
            with engine.begin() as connection:
                for sql in SEED_SQL:
                    connection.execute(text(sql), {"first": first, "last": last})
            print(f"bench: seeded {last:,} results", flush=True)
        with engine.begin() as connection:
            connection.execute(text("ANALYZE lab_results"))
            connection.execute(text("ANALYZE processed_messages"))
    finally:
        engine.dispose()
    return time.perf_counter() - started
