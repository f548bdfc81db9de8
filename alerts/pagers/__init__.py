"""Pager transports, one module each, all behind ``alerts.pagers.base.Pager``.

``TRANSPORT_TYPES`` maps the ``type`` a transport has in the settings to its class; the
service builds each from plain constructor arguments.
"""

from __future__ import annotations

from alerts.pagers.base import DeliveryResult, Outcome, Pager
from alerts.pagers.console import ConsolePager
from alerts.pagers.jsonl import JsonLinesPager
from alerts.pagers.smtp import SmtpPager
from alerts.pagers.wctp import WctpPager
from alerts.pagers.webhook import WebhookPager

TRANSPORT_TYPES: dict[str, type[Pager]] = {
    "console": ConsolePager,
    "jsonl": JsonLinesPager,
    "webhook": WebhookPager,
    "wctp": WctpPager,
    "smtp": SmtpPager,
}

__all__ = [
    "TRANSPORT_TYPES",
    "ConsolePager",
    "DeliveryResult",
    "JsonLinesPager",
    "Outcome",
    "Pager",
    "SmtpPager",
    "WctpPager",
    "WebhookPager",
]
