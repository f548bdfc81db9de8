"""Queries of the pipeline transaction: de-duplication, patient lock, results, orders, history.

Every function takes the caller's ``Session`` and never commits: the pipeline owns the
transaction, so a message's effects are stored all together or not at all.
"""

from __future__ import annotations

import functools
from collections.abc import Iterable, Sequence
from datetime import datetime, timedelta
from typing import Any, NamedTuple

from sqlalchemy import Table, case, select
from sqlalchemy.dialects import postgresql, sqlite
from sqlmodel import Session, col

from alerts.model import (
    ANALYTE_ALBUMIN,
    ANALYTE_CORRECTED_CALCIUM,
    TRIGGER_ANALYTES,
    AlertState,
    PatientHistory,
    Severity,
    StoredOrder,
    StoredResult,
)
from parsers.events import LabResult, MedicationOrder, MessageHeader
from service.db import staging
from service.db.models import (
    Alert,
    DeadLetter,
    LabResultRow,
    MedicationOrderRow,
    Patient,
    ProcessedMessage,
)
from service.db.patients import PatientRecord

EVALUATED_ANALYTES = frozenset((*TRIGGER_ANALYTES, ANALYTE_CORRECTED_CALCIUM, ANALYTE_ALBUMIN))


def _table(model: type[Any]) -> Table:
    return model.__table__  # type: ignore[no-any-return]


@functools.cache
def _statements(dialect: str) -> dict[str, Any]:
    """Core statements built once per dialect and executed with parameter lists.

    Building ORM-enabled statements per row cost more than the database work itself; these are
    compiled once and sent as executemany (multi-row VALUES on PostgreSQL).
    """
    insert = postgresql.insert if dialect == "postgresql" else sqlite.insert
    processed_table = _table(ProcessedMessage)
    # RETURNING says which rows were inserted, on every backend (psycopg reports rowcount -1
    # for these statements).
    processed = (
        insert(processed_table)
        .on_conflict_do_nothing(index_elements=list(_CLAIM_KEY))
        .returning(*(processed_table.c[name] for name in _CLAIM_KEY))
    )
    results_table = _table(LabResultRow)
    results = insert(results_table)
    new, old = results.excluded, results_table.c
    results = results.on_conflict_do_update(
        index_elements=list(_RESULT_KEY),
        set_={
            name: case((new.value.is_(None), old[name]), else_=new[name])
            if name in _VALUE_FIELDS
            else new[name]
            for name in _result_values()
        },
        # Messages arrive out of order: an older version never overwrites a newer one.
        where=results_table.c.message_time <= results.excluded.message_time,
    )
    orders = insert(_table(MedicationOrderRow)).on_conflict_do_nothing(
        index_elements=["patient_id", "control_id", "order_key"]
    )
    dead_letters = insert(_table(DeadLetter)).on_conflict_do_nothing(
        index_elements=["location_key"]
    )
    return {
        "processed": processed,
        "results": results,
        "orders": orders,
        "dead_letters": dead_letters,
    }


@functools.cache
def _staged_conflicts() -> dict[str, tuple[Table, str, str]]:
    """PostgreSQL: (table, ON CONFLICT clause, RETURNING list) of the COPY-staged writes: the
    same rules as ``_statements``, as SQL text for ``staging.write``."""
    claim_key, result_key = ", ".join(_CLAIM_KEY), ", ".join(_RESULT_KEY)
    replaced = ", ".join(
        f"{name} = CASE WHEN excluded.value IS NULL THEN lab_results.{name} "
        f"ELSE excluded.{name} END"
        if name in _VALUE_FIELDS
        else f"{name} = excluded.{name}"
        for name in _result_values()
    )
    return {
        "processed": (
            _table(ProcessedMessage),
            f"ON CONFLICT ({claim_key}) DO NOTHING",
            claim_key,
        ),
        "results": (
            _table(LabResultRow),
            f"ON CONFLICT ({result_key}) DO UPDATE SET {replaced} "
            # Messages arrive out of order: an older version never overwrites a newer one.
            "WHERE lab_results.message_time <= excluded.message_time",
            "",
        ),
    }


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


def _run(session: Session, name: str, params: Any) -> Any:
    """Execute statement ``name`` for a list of rows: dicts, or the NamedTuple rows of the
    staged tables (``ClaimRow``, ``ResultRow``)."""
    connection = session.connection()
    if name in _staged_conflicts():
        if connection.dialect.name == "postgresql":
            table, conflict, returning = _staged_conflicts()[name]
            return staging.write(session, table, params, conflict, returning)
        params = [row._asdict() for row in params]
    return connection.execute(_statements(connection.dialect.name)[name], params)


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


def specimen_of(result_key: str) -> str:
    """The order (OBR) a stored result was reported in: the anchor of its result key, or ""
    when the result had no order id (its anchor is then its observation time)."""
    anchor = result_key.partition("|")[0]
    return "" if _looks_like_time(anchor) else anchor


def _looks_like_time(anchor: str) -> bool:
    # result_key() anchors a result without an order id on observed_at.isoformat().
    return len(anchor) >= 19 and anchor[4] == "-" and anchor[10] == "T"


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


def load_history(
    session: Session,
    patient: Patient | PatientRecord,
    now: datetime,
    history_days: int,
    hidden: frozenset[str] = frozenset(),
) -> PatientHistory:
    """All catalogued orders of the patient and its mineral results of the last history_days.

    Rows written by the messages whose control ids are ``hidden`` are left out: a batch
    evaluates each message against what had arrived up to it, as message-by-message
    processing would.
    """
    orders = session.execute(
        select(MedicationOrderRow).where(col(MedicationOrderRow.patient_id) == patient.patient_id)
    ).scalars()
    since = now - timedelta(days=history_days)
    results = session.execute(
        select(LabResultRow).where(
            col(LabResultRow.patient_id) == patient.patient_id,
            col(LabResultRow.observed_at) >= since,
            LabResultRow.analyte.in_(EVALUATED_ANALYTES),  # type: ignore[attr-defined]
        )
    ).scalars()
    return PatientHistory(
        patient_id=patient.patient_id,
        location=patient.location,
        orders=tuple(stored_order(o) for o in orders if _message_of(o) not in hidden),
        results=tuple(stored_result(r) for r in results if r.control_id not in hidden),
    )


def _message_of(row: MedicationOrderRow) -> str:
    """The control id of the message that wrote an order row (see ``order_row``)."""
    base, mark, position = row.control_id.rpartition("#")
    return base if mark and position.isdigit() else row.control_id


def stored_order(row: MedicationOrderRow) -> StoredOrder:
    """A stored order message as the clinical core reads it."""
    return StoredOrder(
        order_key=row.order_key,
        order_control=row.order_control,
        drug=row.drug,
        route=row.route,
        dose_at=row.dose_at,
        end_at=row.end_at,
        message_time=row.message_time,
        ordering_provider=row.ordering_provider,
        administered=row.administered,
        completion_status=row.completion_status,
    )


def stored_result(row: LabResultRow) -> StoredResult:
    """A stored result as the clinical core reads it."""
    return StoredResult(
        result_key=row.result_key,
        analyte=row.analyte,
        value=row.value,
        comparator=row.comparator,
        unit=row.unit,
        status=row.status,
        observed_at=row.observed_at,
        received_at=row.received_at,
        reference_range=row.reference_range,
        code=row.code,
        specimen=specimen_of(row.result_key),
    )


def load_alerts(session: Session, patient_id: str) -> dict[str, Alert]:
    rows = session.execute(
        select(Alert).where(col(Alert.patient_id) == patient_id, col(Alert.status) != "merged")
    ).scalars()
    return {row.dedup_key: row for row in rows}


def alert_state(row: Alert) -> AlertState:
    return AlertState(
        dedup_key=row.dedup_key,
        severity=Severity.parse(row.severity),
        value_canonical=row.value_canonical,
        status=row.status,
    )
