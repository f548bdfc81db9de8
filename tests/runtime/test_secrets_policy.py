"""The secrets policy of `run` and `check-config`: a table of weak secrets, each refused by key."""

from __future__ import annotations

from typing import Any

import pytest

from service.runtime.secrets_policy import (
    fresh_secrets_env,
    require_strong_secrets,
    secret_problems,
)
from service.runtime.settings import ConfigError, Settings, load_settings

STRONG = "s" * 32
STRONG_SALT = "t" * 32
STRONG_TOKEN = "u" * 32


def settings(**sections: dict[str, Any]) -> Settings:
    base: dict[str, dict[str, Any]] = {
        "api": {"ack_secret": STRONG, "tokens": [STRONG_TOKEN]},
        "patient": {"log_hash_salt": STRONG_SALT},
    }
    for name, values in sections.items():
        base[name] = {**base.get(name, {}), **values}
    return load_settings(overrides=base)


def test_strong_secrets_pass() -> None:
    assert secret_problems(settings()) == []
    require_strong_secrets(settings())  # does not raise


@pytest.mark.parametrize(
    ("sections", "key", "why"),
    [
        # Without an ack secret a random key is made per process: links die at each restart.
        ({"api": {"ack_secret": None}}, "api.ack_secret", "not set"),
        # The finding: check-config passed with an ack secret "x".
        ({"api": {"ack_secret": "x"}}, "api.ack_secret", "shorter than 32 bytes"),
        # 31 bytes is one too few; the boundary is bytes, not characters.
        ({"api": {"ack_secret": "a" * 31}}, "api.ack_secret", "shorter than 32 bytes"),
        ({"api": {"ack_secret": "é" * 15}}, "api.ack_secret", "shorter than 32 bytes"),
        # The example env file's literal values.
        ({"api": {"ack_secret": "CHANGE-ME-ack-secret"}}, "api.ack_secret", "placeholder"),
        ({"api": {"ack_secret": "change-me" * 5}}, "api.ack_secret", "placeholder"),
        # An empty log salt, and the public default "labsentinel".
        ({"patient": {"log_hash_salt": ""}}, "patient.log_hash_salt", "not set"),
        ({"patient": {"log_hash_salt": "labsentinel"}}, "patient.log_hash_salt", "public"),
        ({"patient": {"log_hash_salt": "CHANGE-ME-salt"}}, "patient.log_hash_salt", "placeholder"),
        # The finding: an API token "a".
        ({"api": {"tokens": ["a"]}}, "api.tokens[0]", "shorter than 32 bytes"),
        (
            {"api": {"tokens": [STRONG_TOKEN, "CHANGE-ME-api-token"]}},
            "api.tokens[1]",
            "placeholder",
        ),
        # A scoped token "name:role:secret" is judged by its secret, not by the whole entry.
        ({"api": {"tokens": ["ward-pc:viewer:short-secret-0123"]}}, "api.tokens[0]", "shorter"),
        # Passwords set elsewhere: a placeholder is refused whatever its length.
        (
            {"database": {"url": "postgresql://labsentinel:CHANGE-ME@postgres:5432/labsentinel"}},
            "database.url",
            "placeholder",
        ),
        ({"kafka": {"sasl_password": "CHANGE-ME"}}, "kafka.sasl_password", "placeholder"),
    ],
)
def test_weak_secrets_are_refused_naming_the_key(
    sections: dict[str, dict[str, Any]], key: str, why: str
) -> None:
    weak = settings(**sections)
    with pytest.raises(ConfigError) as raised:
        require_strong_secrets(weak)
    message = str(raised.value)
    assert f"'{key}'" in message and why in message
    assert "\n" not in message  # one sentence, like every other config error
    for value in _values(sections):  # never the secret itself
        if value and len(value) > 3:
            assert value not in message


def test_a_scoped_token_with_a_long_secret_passes() -> None:
    assert secret_problems(settings(api={"tokens": [f"ward-pc:viewer:{STRONG_TOKEN}"]})) == []


def test_no_tokens_is_allowed() -> None:
    # No tokens: the JSON API refuses every bearer; nothing weak is accepted.
    assert secret_problems(settings(api={"tokens": []})) == []


def test_every_problem_is_named_at_once() -> None:
    problems = secret_problems(
        settings(api={"ack_secret": None, "tokens": ["a"]}, patient={"log_hash_salt": "x"})
    )
    assert len(problems) == 3


def test_fresh_secrets_pass_and_differ() -> None:
    one, two = fresh_secrets_env(), fresh_secrets_env()
    assert one != two
    ok = settings(
        api={"ack_secret": one["LABSENTINEL_API_ACK_SECRET"]},
        patient={"log_hash_salt": one["LABSENTINEL_PATIENT_LOG_HASH_SALT"]},
    )
    assert secret_problems(ok) == []


def _values(sections: dict[str, dict[str, Any]]) -> list[str]:
    found: list[str] = []
    for values in sections.values():
        for value in values.values():
            found += value if isinstance(value, list) else [value] if isinstance(value, str) else []
    return found
