"""The signed ack link a page carries, and the site's ack secret.

The token format is ``service.notify.ack_tokens``'s; this module only chooses the secret and
the lifetime from the settings and builds the URL. Pure apart from the per-process random
secret (created once, when ``api.ack_secret`` is not configured).
"""

from __future__ import annotations

import secrets
from datetime import datetime, timedelta

from service.notify import ack_tokens as acks
from service.runtime.settings import Settings

# One random key per process when none is configured: links stay valid until a restart.
_SECRETS: dict[int, bytes] = {}


def ack_secret(settings: Settings) -> bytes:
    """The key of ack links: ``api.ack_secret``, else one random key per process."""
    configured = settings.api.ack_secret
    if configured is not None and configured.get_secret_value():
        return configured.get_secret_value().encode()
    return _SECRETS.setdefault(0, secrets.token_bytes(32))


def ack_link(settings: Settings, public_id: str, now: datetime) -> str:
    """``{api.base_url}/ack/{token}`` for the alert ``public_id`` (``Alert.public_id``, never
    the dedup key), valid ``api.ack_link_ttl_hours`` from ``now``."""
    token = acks.make_ack_token(
        ack_secret(settings),
        public_id,
        now,
        timedelta(hours=settings.api.ack_link_ttl_hours),
    )
    return acks.ack_url(settings.api.base_url, token)
