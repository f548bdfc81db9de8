"""What every value a web page prints passes through: bidi formatting characters removed.

Installed as the Jinja environment's ``finalize`` hook, so it applies to every ``{{ ... }}``
of every template (before autoescaping, which still runs), and as the ``nobidi`` filter for
values built outside an expression. See ``alerts.text_safety`` for why.
"""

from __future__ import annotations

from typing import Any

from jinja2 import Environment
from markupsafe import Markup

from alerts.text_safety import strip_bidi


def finalize(value: Any) -> Any:
    """``value`` without bidi controls; markup stays markup, other types pass unchanged."""
    if isinstance(value, Markup):
        return Markup(strip_bidi(str(value)))  # removing characters creates no markup
    if isinstance(value, str):
        return strip_bidi(value)
    return value


def install(env: Environment) -> None:
    env.finalize = finalize
    env.filters["nobidi"] = strip_bidi
