"""Which secrets ``run`` and ``check-config`` refuse to start with. Pure: reads only the settings.

- ``api.ack_secret`` and ``patient.log_hash_salt`` must be set: without a stable ack secret
  every ack link in flight dies at each restart (the key would be random per process), and
  the default salt ``labsentinel`` is public, so a hashed MRN in a log is one dictionary
  lookup away from the MRN.
- Those two and every API token's secret must be at least ``MIN_SECRET_BYTES`` long: 32 bytes
  is the HMAC-SHA256 key length (RFC 2104 §3 advises keys no shorter than the hash output)
  and OWASP's Secrets Management Cheat Sheet asks for 256-bit secrets.
- No secret, token or password (the database URL's, Kafka's SASL password, the OIDC client
  secret) may keep a placeholder of the example env files (``CHANGE-ME...``).

Problems name the key and never quote a value.
"""

from __future__ import annotations

import secrets

from pydantic import SecretStr
from sqlalchemy.engine import make_url
from sqlalchemy.exc import ArgumentError

from service.runtime.auth_settings import parse_api_token
from service.runtime.settings import ConfigError, Settings

MIN_SECRET_BYTES = 32
# Spellings of "change me" in example files: refused wherever they appear in a secret.
PLACEHOLDERS = ("change-me", "changeme", "change_me")
# Values published in this project's code and docs.
PUBLIC_VALUES = frozenset({"labsentinel"})
HOW = 'e.g. python -c "import secrets; print(secrets.token_urlsafe(32))"'


def _is_placeholder(value: str) -> bool:
    lowered = value.casefold()
    return any(mark in lowered for mark in PLACEHOLDERS)


def _secret_problem(key: str, value: str | None) -> str | None:
    """What is wrong with the required secret ``key``, or None."""
    if value is None or not value.strip():
        return f"'{key}' is not set"
    if _is_placeholder(value):
        return f"'{key}' is still the example file's placeholder"
    if value in PUBLIC_VALUES:
        return f"'{key}' is the public default"
    if len(value.encode("utf-8")) < MIN_SECRET_BYTES:
        return f"'{key}' is shorter than {MIN_SECRET_BYTES} bytes"
    return None


def _plain(secret: SecretStr | None) -> str | None:
    return None if secret is None else secret.get_secret_value()


def _url_password(url: str) -> str | None:
    try:
        password = make_url(url).password
    except ArgumentError:
        return None
    return None if password is None else str(password)


def secret_problems(settings: Settings) -> list[str]:
    """Every problem of the settings' secrets, one phrase each naming the key."""
    problems: list[str | None] = [
        _secret_problem("api.ack_secret", _plain(settings.api.ack_secret)),
        _secret_problem("patient.log_hash_salt", _plain(settings.patient.log_hash_salt)),
    ]
    legacy_role = settings.auth.legacy_token_role
    for n, entry in enumerate(settings.api.tokens):
        secret = parse_api_token(entry.get_secret_value(), legacy_role).secret
        problems.append(_secret_problem(f"api.tokens[{n}]", secret))
    # Passwords chosen elsewhere (the database, the broker, the identity provider): their
    # length is not ours to set, but a placeholder is never right.
    others = {
        "database.url": _url_password(settings.database.url),
        "kafka.sasl_password": _plain(settings.kafka.sasl_password),
        "auth.oidc_client_secret": _plain(settings.auth.oidc_client_secret),
    }
    for key, value in others.items():
        if value is not None and _is_placeholder(value):
            problems.append(f"'{key}' has the example file's placeholder password")
    return [p for p in problems if p is not None]


def require_strong_secrets(settings: Settings) -> None:
    """Raise ConfigError (one sentence naming each key) unless the secrets are fit to run."""
    problems = secret_problems(settings)
    if problems:
        raise ConfigError(
            f"insecure secrets: {'; '.join(problems)} (each secret needs at least "
            f"{MIN_SECRET_BYTES} random bytes, {HOW})"
        )


def fresh_secrets_env() -> dict[str, str]:
    """New random values of the required secrets, as LABSENTINEL_* variables: for the tools
    and tests that start ``labsentinel run`` (the demo, the soak). Keep one result for all
    the processes that must verify each other's ack links."""
    return {
        "LABSENTINEL_API_ACK_SECRET": secrets.token_urlsafe(MIN_SECRET_BYTES),
        "LABSENTINEL_PATIENT_LOG_HASH_SALT": secrets.token_urlsafe(MIN_SECRET_BYTES),
    }
