"""Long-running parts of the daemon besides the consumer and the dispatcher.

Each component has a ``name`` and ``async run(stop)`` that returns once ``stop`` is set (after
finishing its work in flight) and raises only for fatal errors, which stop the daemon. Add a
component by appending one line to ``build_components``.
"""

from __future__ import annotations

import asyncio
from typing import TYPE_CHECKING, Protocol

if TYPE_CHECKING:
    from service.daemon import Daemon


class Component(Protocol):
    name: str

    async def run(self, stop: asyncio.Event) -> None: ...


def build_components(daemon: Daemon) -> list[Component]:
    components: list[Component] = []
    from service.api.server import api_components  # lazy: `replay` needs no web stack

    components.extend(api_components(daemon))
    from service.notify.escalation import EscalationComponent
    from service.notify.reminders import ReminderComponent

    components.append(EscalationComponent(daemon.app))
    components.append(ReminderComponent(daemon.app))
    return components
