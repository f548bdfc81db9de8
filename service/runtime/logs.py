"""Structured logs: one JSON object per line, with only PHI-free fields.

Call sites pass context through ``extra=`` (control_id, hashed patient, channel, ...); the
formatter writes those keys and never the arguments of exceptions raised from parsed data.

An exception on a record (``log.exception``, ``exc_info=``) is written as its class, a safe
summary (:func:`describe_exception`) and where it was raised, never as a traceback: frames,
locals and messages of exceptions from SQL drivers and parsers quote field values, and
SQLAlchemy's quote statement parameters. Libraries sometimes append an exception's repr to the
message itself (asyncio's "Task exception was never retrieved"), so the message of a record
that carries an exception is cut to its first line.
"""

from __future__ import annotations

import json
import logging
import sys
import threading
from datetime import UTC, datetime
from types import TracebackType
from typing import Any

# Attributes every LogRecord has; anything else on a record came from ``extra=``.
_STANDARD = frozenset(vars(logging.makeLogRecord({})).keys()) | {"message", "asctime"}
# Keys that would carry PHI if a call site ever passed them: dropped, whatever their value
# (pass ``patient=phi.patient_hash(...)`` instead). Bytes are never written (raw HL7).
_PHI_KEYS = frozenset(
    {"patient_id", "mrn", "name", "patient_name", "birth_date", "dob", "raw", "hl7", "payload"}
)
# Extras that only repeat the message: uvicorn's ANSI-coloured copy of it.
_DROPPED = frozenset({"color_message"})
_MAX_TEXT = 500

# Exceptions whose text is ours or the operating system's and never quotes message content.
# Everything else (SQLAlchemy and psycopg errors quote statements and values; parser and
# Python errors can quote a field) is summarised by its class alone.
_SAFE_TEXT: tuple[type[BaseException], ...] = (TimeoutError, ConnectionError)


def describe_exception(exc: BaseException) -> str:
    """One PHI-free line naming ``exc``: its class, and its text only when that is known to
    quote no message content (OS errors: the description and file name; exceptions marked
    ``safe_message = True``; Kafka client errors, which name brokers and topics). Never raises.
    """
    name = type(exc).__name__
    try:
        if isinstance(exc, OSError) and exc.strerror:
            where = f" ({exc.filename})" if isinstance(exc.filename, str) else ""
            return f"{name}: {exc.strerror}{where}"[:_MAX_TEXT]
        if getattr(exc, "safe_message", False) or isinstance(exc, _SAFE_TEXT) or _is_kafka(exc):
            text = str(exc).splitlines()[0] if str(exc) else ""
            return f"{name}: {text}"[:_MAX_TEXT] if text else name
    except Exception:
        pass
    return name


def _is_kafka(exc: BaseException) -> bool:
    # aiokafka's errors say which broker, topic or group failed, never what a record held.
    return type(exc).__module__.startswith("aiokafka")


def _raised_at(tb: TracebackType | None) -> str:
    while tb is not None and tb.tb_next is not None:
        tb = tb.tb_next
    return f"{tb.tb_frame.f_code.co_filename}:{tb.tb_lineno}" if tb is not None else ""


def _message(record: logging.LogRecord) -> str:
    try:
        text = record.getMessage()
    except Exception:  # a bad %-format must not lose the record
        text = str(record.msg)
    if record.exc_info:
        text = text.splitlines()[0] if text else ""
    return text if len(text) <= _MAX_TEXT else text[:_MAX_TEXT] + "…"


def _exception_fields(record: logging.LogRecord) -> dict[str, str]:
    if not record.exc_info or record.exc_info[1] is None:
        return {}
    exc = record.exc_info[1]
    return {
        "exc_type": type(exc).__name__,
        "exc": describe_exception(exc),
        "exc_at": _raised_at(record.exc_info[2]),
    }


def _extras(record: logging.LogRecord) -> dict[str, Any]:
    out: dict[str, Any] = {}
    for key, value in vars(record).items():
        if key in _STANDARD or key in _DROPPED or key.startswith("_"):
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
            "msg": _message(record),
        }
        doc.update(_extras(record))
        # The class, a safe summary and where it was raised; never the traceback (stack_info
        # is dropped for the same reason: frames are not ours to print).
        doc.update(_exception_fields(record))
        return json.dumps(doc, default=str)


class TextFormatter(logging.Formatter):
    def format(self, record: logging.LogRecord) -> str:
        fields = {**_extras(record), **_exception_fields(record)}
        extras = " ".join(f"{k}={v}" for k, v in fields.items())
        return f"{record.levelname:<7} {record.name}: {_message(record)} {extras}".rstrip()


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
    # httpx logs every request's URL at INFO ("HTTP Request: POST https://user:pw@...?
    # token=..."): a channel's URL may carry credentials in its userinfo or query, so the
    # transport loggers say only what goes wrong, whatever the level.
    for transport in ("httpx", "httpcore"):
        logging.getLogger(transport).setLevel(max(logging.WARNING, logging.getLevelName(level)))
    # A record that fails to format or write would otherwise be dumped to stderr by the
    # logging module itself, with a traceback, the message and its arguments.
    logging.raiseExceptions = False
    install_exception_hooks()


def install_exception_hooks() -> None:
    """Uncaught exceptions (main thread, other threads, "unraisable" ones in finalisers) are
    logged as one record with the class and a safe summary, never printed as a traceback."""
    hooks = logging.getLogger("labsentinel.uncaught")

    def on_uncaught(kind: type[BaseException], exc: BaseException, tb: Any) -> None:
        hooks.critical("uncaught exception", exc_info=(kind, exc, tb))

    def on_thread(args: threading.ExceptHookArgs) -> None:
        if args.exc_value is not None and not isinstance(args.exc_value, SystemExit):
            hooks.error(
                "uncaught exception in a thread",
                exc_info=(args.exc_type, args.exc_value, args.exc_traceback),
                extra={"thread": args.thread.name if args.thread else ""},
            )

    def on_unraisable(args: Any) -> None:
        if args.exc_value is not None:
            hooks.warning(
                "exception ignored",
                exc_info=(args.exc_type, args.exc_value, args.exc_traceback),
            )

    sys.excepthook = on_uncaught
    threading.excepthook = on_thread
    sys.unraisablehook = on_unraisable
