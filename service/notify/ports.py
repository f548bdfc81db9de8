"""What notify's long-running components need from the application that runs them.

The daemon builds ``EscalationComponent(app)`` and ``ReminderComponent(app)`` with the App
that bootstrap wires; these Protocols name the few attributes they use, so notify depends
on no module above it (bootstrap, daemon, ingest). Read-only members are properties so that
the App's concrete types (``Pipeline``, ``Dispatcher``) satisfy them.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Protocol

from sqlalchemy.engine import Engine

from service.notify.delivery import Delivery
from service.runtime.clinical import Clinical
from service.runtime.clock import Clock
from service.runtime.settings import Settings


class PipelinePort(Protocol):
    """The pipeline's delivery (with the App's paging) and its clinical clock."""

    @property
    def delivery(self) -> Delivery: ...

    @property
    def clock(self) -> Clock: ...


class DispatcherPort(Protocol):
    """The dispatcher's channels and wake-up."""

    @property
    def transports(self) -> Mapping[str, object]: ...

    def wake(self) -> None: ...


class NotifyApp(Protocol):
    """The application as notify's components use it (``service.bootstrap.App`` fits)."""

    @property
    def engine(self) -> Engine: ...

    @property
    def settings(self) -> Settings: ...

    @property
    def clinical(self) -> Clinical: ...

    @property
    def pipeline(self) -> PipelinePort: ...

    @property
    def dispatcher(self) -> DispatcherPort: ...
