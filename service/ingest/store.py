"""The writes of the pipeline transaction: message claims (de-duplication), results, orders
and dead-letter rows, with the row builders they take.

Every function takes the caller's ``Session``, blocks on the database and never commits: the
pipeline owns the transaction, so a message's effects are stored all together or not at all.
What evaluation reads back is ``service.db.patient_history``.
"""

from __future__ import annotations

import functools
from collections.abc import Iterable, Sequence
from datetime import datetime
from typing import Any, NamedTuple

from sqlalchemy import ColumnElement, Table, case
from sqlmodel import Session

from parsers.events import LabResult, MedicationOrder, MessageHeader
from service.db import staging
from service.db.dialect import Columns, Conflict, insert_on_conflict, postgresql_text
from service.db.models import DeadLetter, LabResultRow, MedicationOrderRow, ProcessedMessage


def _table(model: type[Any]) -> Table:
    return model.__table__  # type: ignore[no-any-return]


# The primary keys the claims and results are upserted on (migration 0004).
_CLAIM_KEY = ("sending_facility", "control_id")
_RESULT_KEY = ("patient_id", "result_key")
# A version without a number never erases the stored one: OBX-11 U with an empty OBX-5 means
# "the preliminary value is now final", and D/W/X retract by their status, not by wiping the
# value (CLINICAL.md "Edge semantics"). These columns are kept when the new version's value
# is NULL; its status, times and control id are taken.
_VALUE_FIELDS = ("value", "comparator", "value_text", "unit")


def _result_values() -> list[str]:
    """The lab_results columns a newer version of a result replaces: all but its key."""
    return [c.name for c in _table(LabResultRow).c if c.name not in _RESULT_KEY]


def _newer_version(new: Columns, old: Columns) -> dict[str, Any]:
    return {
        name: case((new.value.is_(None), old[name]), else_=new[name])
        if name in _VALUE_FIELDS
        else new[name]
        for name in _result_values()
    }


def _not_older(new: Columns, old: Columns) -> ColumnElement[bool]:
    # Messages arrive out of order: an older version never overwrites a newer one.
    return old.message_time <= new.message_time  # type: ignore[no-any-return]


# Each table's conflict rule, written once for every dialect and for the COPY path.
_CONFLICTS: dict[str, tuple[type[Any], Conflict, tuple[str, ...]]] = {
    # RETURNING says which claims were new, on every backend (psycopg reports rowcount -1).
    "processed": (ProcessedMessage, Conflict(key=_CLAIM_KEY), _CLAIM_KEY),
    "results": (
        LabResultRow,
        Conflict(key=_RESULT_KEY, update=_newer_version, where=_not_older),
        (),
    ),
    "orders": (MedicationOrderRow, Conflict(key=("patient_id", "control_id", "order_key")), ()),
    "dead_letters": (DeadLetter, Conflict(key=("location_key",)), ()),
}
# Written on PostgreSQL by COPY into a staging table, then one INSERT ... SELECT.
_STAGED = frozenset({"processed", "results"})


@functools.cache
def _statement(name: str, dialect: str) -> Any:
    """Core statement ``name`` built once per dialect and executed with parameter lists.

    Building ORM-enabled statements per row cost more than the database work itself; these are
    compiled once and sent as executemany (multi-row VALUES on PostgreSQL).
    """
    model, conflict, returning = _CONFLICTS[name]
    return insert_on_conflict(_table(model), dialect, conflict, returning=returning)


@functools.cache
def _staged_move(name: str) -> str:
    """PostgreSQL: the SQL text moving ``name``'s COPY-staged rows into its table."""
    model, conflict, returning = _CONFLICTS[name]
    table = _table(model)
    statement = insert_on_conflict(
        table, "postgresql", conflict, returning=returning, source=staging.staged_source(table)
    )
    return postgresql_text(statement)


def _run(session: Session, name: str, params: Any) -> Any:
    """Execute statement ``name`` for a list of rows: dicts, or the NamedTuple rows of the
    staged tables (``ClaimRow``, ``ResultRow``). Blocks on the database; never commits."""
    connection = session.connection()
    if name in _STAGED:
        if connection.dialect.name == "postgresql":
            model, _conflict, returning = _CONFLICTS[name]
            move = _staged_move(name)
            return staging.write(session, _table(model), params, move, returning=bool(returning))
        params = [row._asdict() for row in params]
    return connection.execute(_statement(name, connection.dialect.name), params)


class ClaimRow(NamedTuple):
    """A processed_messages row, fields in table column order (COPY writes them as they are)."""

    sending_facility: str
    control_id: str
    message_type: str
    processed_at: datetime


def claim_messages(
    session: Session, headers: Sequence[MessageHeader], now: datetime
) -> set[tuple[str, str]]:
    """Record sending facility + MSH-10 of each message; return those not processed before.

    ``headers`` must not repeat a (facility, control id) pair.
    """
    if not headers:
        return set()
    rows = [ClaimRow(h.sending_facility, h.control_id, h.message_type, now) for h in headers]
    return {(row[0], row[1]) for row in _run(session, "processed", rows)}


def result_key(result: LabResult) -> str:
    """Identity of a result across corrections: its order and code (else its time and code),
    then its OBX-4 sub-id and, from the second OBX of the same code and sub-id in one OBR on,
    its occurrence: two OBX of one code in one OBR are two results, never one overwriting the
    other, and a correction re-sent in the same shape finds its original."""
    order = result.filler_order_id or result.placer_order_id
    anchor = order if order else result.observed_at.isoformat()
    key = f"{anchor}|{result.code.upper()}"
    if result.sub_id:
        key += f"|{result.sub_id}"
    if result.occurrence > 1:
        key += f"#{result.occurrence}"
    return key[:255]


class ResultRow(NamedTuple):
    """A lab_results row, fields in table column order (COPY writes them as they are)."""

    patient_id: str
    result_key: str
    analyte: str
    code: str
    value: float | None
    comparator: str
    value_text: str
    unit: str
    reference_range: str
    abnormal_flags: str
    status: str
    observed_at: datetime
    received_at: datetime
    message_time: datetime
    control_id: str


def result_rows(
    patient_id: str, results: Iterable[LabResult], header: MessageHeader, now: datetime
) -> list[ResultRow]:
    message_time = header.message_time or now
    control_id = header.control_id
    return [
        ResultRow(
            patient_id,
            result_key(result),
            result.analyte,
            result.code[:64],
            result.value,
            result.comparator,
            result.value_text[:255],
            result.unit[:32],
            result.reference_range[:64],
            result.abnormal_flags[:32],
            result.status[:2],
            result.observed_at,
            now,
            message_time,
            control_id,
        )
        for result in results
    ]


def upsert_results(session: Session, rows: Sequence[ResultRow]) -> None:
    """Insert or replace results by (patient, result key); the newest message wins.

    One statement may not touch a row twice, so versions of one result within the batch are
    reduced to the newest first (the same rule the database applies across batches).
    """
    newest: dict[tuple[str, str], ResultRow] = {}
    for row in rows:
        key = (row.patient_id, row.result_key)
        kept = newest.get(key)
        if kept is None:
            newest[key] = row
        elif row.message_time >= kept.message_time:
            newest[key] = _keep_value(row, kept)
        else:
            newest[key] = _keep_value(kept, row)
    if newest:
        _run(session, "results", [newest[key] for key in sorted(newest)])


def _keep_value(newer: ResultRow, older: ResultRow) -> ResultRow:
    """``newer``, with ``older``'s value when ``newer`` has none (the rule of the upsert)."""
    if newer.value is not None or older.value is None:
        return newer
    return newer._replace(
        value=older.value,
        comparator=older.comparator,
        value_text=older.value_text,
        unit=older.unit,
    )


def order_key(order: MedicationOrder, header: MessageHeader, position: int = 1) -> str:
    """The order a message is about: its placer, else filler order id; an order group without
    either is its message's (its position added from the second group on, so the groups of
    one RDE stay separate orders)."""
    key = order.placer_order_id or order.filler_order_id
    if not key:
        key = header.control_id if position == 1 else f"{header.control_id}#{position}"
    return key[:199]


def order_row(
    patient_id: str,
    order: MedicationOrder,
    drug_class: str,
    header: MessageHeader,
    position: int = 1,
) -> dict[str, Any]:
    """A medication_orders row for the ``position``-th (1-based) catalogued order group or
    administration of a message.

    From the second on, the row's control id is ``<MSH-10>#<position>``: two administrations
    of one order in one RAS (same order key) are two rows, not one the unique key drops.
    """
    control_id = header.control_id if position == 1 else f"{header.control_id}#{position}"
    return {
        "patient_id": patient_id,
        "order_key": order_key(order, header, position),
        "order_control": order.order_control[:4],
        "drug": order.drug or "",
        "drug_class": drug_class,
        "route": order.route[:32],
        "dose_at": order.dose_at,
        "end_at": order.end_at,
        "message_time": header.message_time or order.dose_at,
        "ordering_provider": order.ordering_provider[:64],
        "administered": order.administered,
        "completion_status": order.completion_status[:2],
        "control_id": control_id[:199],
    }


def insert_orders(session: Session, rows: Sequence[dict[str, Any]]) -> None:
    if rows:
        _run(session, "orders", list(rows))


def insert_dead_letters(session: Session, rows: Sequence[dict[str, Any]]) -> None:
    if rows:
        _run(session, "dead_letters", list(rows))
