"""Ack tokens, Kafka TLS/SASL and database TLS settings, secrets kept out of committed TOML,
and a dependency audit."""

from __future__ import annotations

import base64
import importlib.util
import json
import re
import ssl
import subprocess
import sys
import tomllib
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest

from service.ingest.consumer import kafka_options
from service.notify.ack_tokens import InvalidAckToken, make_ack_token, verify_ack_token
from service.runtime.settings import load_settings

ROOT = Path(__file__).resolve().parents[2]
SECRET = b"k" * 32
NOW = datetime(2025, 3, 1, 12, 0, tzinfo=UTC)
TTL = timedelta(hours=12)
PUBLIC_ID = "Qk3v1o9Zb8tW2rXyJ5mN0a"


def token(public_id: str = PUBLIC_ID, now: datetime = NOW, secret: bytes = SECRET) -> str:
    return make_ack_token(secret, public_id, now, TTL)


def refused(tok: str, now: datetime = NOW, public_id: str | None = None) -> str:
    with pytest.raises(InvalidAckToken) as raised:
        verify_ack_token(SECRET, tok, now, public_id=public_id)
    return raised.value.reason


# -- ack tokens ------------------------------------------------------------------------------


def test_valid_token_is_accepted() -> None:
    claim = verify_ack_token(SECRET, token(), NOW + timedelta(hours=1), public_id=PUBLIC_ID)
    assert claim.public_id == PUBLIC_ID


def test_token_signed_with_another_secret_is_forged() -> None:
    assert refused(token(secret=b"x" * 32)) == "forged"


def test_token_with_edited_body_is_forged() -> None:
    body, signature = token().split(".")
    claims = json.loads(base64.urlsafe_b64decode(body + "=" * (-len(body) % 4)))
    claims[1] = 8  # point it at another alert, keep the signature
    forged = base64.urlsafe_b64encode(json.dumps(claims).encode()).rstrip(b"=").decode()
    assert refused(f"{forged}.{signature}") == "forged"


@pytest.mark.parametrize("tok", ["", "no-dot", ".", "a.b.c", "\x00.\x00"])
def test_garbage_tokens_are_refused(tok: str) -> None:
    assert refused(tok) in ("malformed", "forged")


def test_expired_token_is_refused() -> None:
    # Issued 13 hours ago with a 12-hour lifetime.
    assert refused(token(now=NOW - timedelta(hours=13))) == "expired"
    # Exactly at expiry is already too late.
    assert refused(token(now=NOW - TTL)) == "expired"


def test_token_replayed_for_another_alert_is_refused() -> None:
    assert refused(token(), public_id="another-alert-id-000000") == "other-alert"


def test_token_carries_no_patient_data() -> None:
    body = token().split(".")[0]
    claims = json.loads(base64.urlsafe_b64decode(body + "=" * (-len(body) % 4)))
    # Only the alert's random public id and the times: no dedup key, no row id, no patient.
    assert claims.keys() == {"pid", "exp", "iat"}
    assert claims["pid"] == PUBLIC_ID


# -- Kafka TLS and SASL, database TLS ------------------------------------------------------


def kafka(**values: Any):  # type: ignore[no-untyped-def]
    return load_settings(overrides={"kafka": values}).kafka


def test_plaintext_has_no_tls_or_sasl() -> None:
    options = kafka_options(kafka())
    assert options["security_protocol"] == "PLAINTEXT"
    assert "ssl_context" not in options and "sasl_mechanism" not in options


def test_sasl_ssl_scram_builds_a_verifying_tls_context(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("LABSENTINEL_KAFKA_SASL_PASSWORD", "s3cr3t-from-env")
    settings = load_settings(
        overrides={
            "kafka": {
                "security_protocol": "SASL_SSL",
                "sasl_mechanism": "SCRAM-SHA-512",
                "sasl_username": "labsentinel",
            }
        }  # fmt: skip
    )
    options = kafka_options(settings.kafka)
    context = options["ssl_context"]
    assert isinstance(context, ssl.SSLContext)
    assert context.verify_mode is ssl.CERT_REQUIRED and context.check_hostname
    assert options["sasl_mechanism"] == "SCRAM-SHA-512"
    assert options["sasl_plain_username"] == "labsentinel"
    assert options["sasl_plain_password"] == "s3cr3t-from-env"
    # The secret never shows in the settings' repr (logs of a crash dump print it).
    assert "s3cr3t-from-env" not in repr(settings) and "s3cr3t-from-env" not in str(settings)


def test_ssl_with_client_certificate_files(tmp_path: Path) -> None:
    missing = tmp_path / "nope.pem"
    with pytest.raises((FileNotFoundError, ssl.SSLError, OSError)):
        kafka_options(kafka(security_protocol="SSL", ssl_cafile=str(missing)))


def test_database_tls_parameters_reach_the_driver() -> None:
    from service.db.engine import make_engine

    url = "postgresql://labsentinel@db.example.org/ls?sslmode=verify-full&sslrootcert=/etc/ca.pem"
    engine = make_engine(load_settings(overrides={"database": {"url": url}}).database.url)
    try:
        assert engine.url.query["sslmode"] == "verify-full"
        assert engine.url.query["sslrootcert"] == "/etc/ca.pem"
    finally:
        engine.dispose()


# -- secrets never in the committed TOML ---------------------------------------------------

SECRET_KEY = re.compile(r"pass(word)?|secret|token|security_code|api_?key|credential", re.I)


def secret_values(data: Any, path: str = "") -> list[str]:
    found = []
    if isinstance(data, dict):
        for key, value in data.items():
            where = f"{path}.{key}" if path else key
            if SECRET_KEY.search(key) and value not in ("", None, [], {}):
                found.append(where)
            found += secret_values(value, where)
    elif isinstance(data, list):
        for i, value in enumerate(data):
            found += secret_values(value, f"{path}[{i}]")
    return found


def committed_toml() -> list[Path]:
    files = sorted((ROOT / "configs").glob("*.toml"))
    files += sorted((ROOT / "deploy").rglob("*.toml")) if (ROOT / "deploy").exists() else []
    return files


def test_no_secrets_in_committed_toml() -> None:
    files = committed_toml()
    assert files
    for path in files:
        assert secret_values(tomllib.loads(path.read_text())) == [], path


def test_the_scan_would_catch_a_secret() -> None:
    assert secret_values({"channels": {"hook": {"secret": "abc"}}}) == ["channels.hook.secret"]
    assert secret_values({"kafka": {"sasl_password": ""}}) == []


# -- dependency audit ------------------------------------------------------------------------


@pytest.mark.slow
def test_pip_audit_finds_no_known_vulnerabilities() -> None:
    """CI: `.venv/bin/python -m pip install pip-audit && .venv/bin/python -m pip_audit
    --skip-editable --progress-spinner off` (needs network access to PyPI/OSV)."""
    if importlib.util.find_spec("pip_audit") is None:
        pytest.skip("pip-audit is not installed")
    done = subprocess.run(
        [sys.executable, "-m", "pip_audit", "--skip-editable", "--progress-spinner", "off"],
        capture_output=True,
        text=True,
        timeout=300,
    )
    output = done.stdout + done.stderr
    if done.returncode != 0 and "vulnerab" not in output.lower():
        pytest.skip(f"pip-audit could not run: {done.stderr.strip()[-300:]}")
    # Without access to a vulnerability database (PyPI's JSON API or OSV) pip-audit reports
    # every package as "could not be audited" and exits 0: that proves nothing, so say so.
    if "could not be audited" in output and "No known vulnerabilities found" not in output:
        pytest.skip("pip-audit reached no vulnerability database: nothing was audited")
    assert done.returncode == 0, output
