"""JSON logs: one event per line, and PHI-bearing fields never written."""

from __future__ import annotations

import io
import json
import logging

from service.runtime import logs


def test_json_lines_withhold_phi_fields() -> None:
    stream = io.StringIO()
    logs.configure("INFO", "json", stream)
    try:
        log = logging.getLogger("labsentinel.test")
        log.info(
            "one\nevent",
            extra={
                "control_id": "C1",
                "patient_id": "MRN123",
                "raw": b"MSH|PID|SMITH",
                "patient": "abc123def456",
            },
        )
        try:
            raise ValueError("PID|SMITH^JOHN")
        except ValueError:
            log.exception("failed", extra={"patient_name": "SMITH"})
    finally:
        logging.getLogger().handlers.clear()
    lines = stream.getvalue().splitlines()
    assert len(lines) == 2, "one event per line, newlines escaped"
    first, second = (json.loads(line) for line in lines)
    assert first["control_id"] == "C1" and first["patient"] == "abc123def456"
    assert first["patient_id"] == "[withheld]" and first["raw"] == "[withheld]"
    assert "SMITH" not in stream.getvalue() and "MRN123" not in stream.getvalue()
    assert second["exc_type"] == "ValueError"
