"""Structured logs: one JSON object per line, with only PHI-free fields.

Call sites pass context through ``extra=`` (control_id, hashed patient, channel, ...); the
formatter writes those keys and never the arguments of exceptions raised from parsed data.
"""

from __future__ import annotations

import json
import logging
import sys
from datetime import UTC, datetime
from typing import Any

# Attributes every LogRecord has; anything else on a record came from ``extra=``.
_STANDARD = frozenset(vars(logging.makeLogRecord({})).keys()) | {"message", "asctime"}
# Keys that would carry PHI if a call site ever passed them: dropped, whatever their value
# (pass ``patient=phi.patient_hash(...)`` instead). Bytes are never written (raw HL7).
_PHI_KEYS = frozenset(
    {"patient_id", "mrn", "name", "patient_name", "birth_date", "dob", "raw", "hl7", "payload"}
)
_MAX_TEXT = 500


def _extras(record: logging.LogRecord) -> dict[str, Any]:
    out: dict[str, Any] = {}
    for key, value in vars(record).items():
        if key in _STANDARD or key.startswith("_"):
            continue
        if key.lower() in _PHI_KEYS:
            out[key] = "[withheld]"
        elif isinstance(value, bytes | bytearray):
            out[key] = f"[{len(value)} bytes]"
        elif isinstance(value, str) and len(value) > _MAX_TEXT:
            out[key] = value[:_MAX_TEXT] + "…"
        else:
            out[key] = value
    return out


class JsonFormatter(logging.Formatter):
    def format(self, record: logging.LogRecord) -> str:
        doc: dict[str, Any] = {
            "ts": datetime.fromtimestamp(record.created, UTC).isoformat(timespec="milliseconds"),
            "level": record.levelname.lower(),
            "logger": record.name,
            "msg": record.getMessage(),
        }
        doc.update(_extras(record))
        if record.exc_info and record.exc_info[0] is not None:
            # The type and where it was raised, not its message: messages of exceptions from
            # parsed data may quote field values.
            doc["exc_type"] = record.exc_info[0].__name__
            tb = record.exc_info[2]
            while tb is not None and tb.tb_next is not None:
                tb = tb.tb_next
            if tb is not None:
                doc["exc_at"] = f"{tb.tb_frame.f_code.co_filename}:{tb.tb_lineno}"
        return json.dumps(doc, default=str)


class TextFormatter(logging.Formatter):
    def format(self, record: logging.LogRecord) -> str:
        extras = " ".join(f"{k}={v}" for k, v in _extras(record).items())
        return f"{record.levelname:<7} {record.name}: {record.getMessage()} {extras}".rstrip()


def configure(level: str = "INFO", fmt: str = "json", stream: Any = None) -> None:
    handler = logging.StreamHandler(stream or sys.stderr)
    handler.setFormatter(JsonFormatter() if fmt == "json" else TextFormatter())
    root = logging.getLogger()
    root.handlers[:] = [handler]
    root.setLevel(level)
    # aiokafka logs connection problems with host names only, but at INFO it is chatty.
    logging.getLogger("aiokafka").setLevel(max(logging.WARNING, logging.getLevelName(level)))
    logging.getLogger("apscheduler").setLevel(logging.WARNING)
    logging.getLogger("alembic").setLevel(logging.WARNING)
