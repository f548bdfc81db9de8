"""The shape of ``configs/routing.toml``, as pydantic models (see ``alerts.routing``).

Types, required keys and unknown keys (a misspelt setting is an error, not a silent default)
are checked here; references between tables (a route's team, a team's policy, a member's
contacts) by ``alerts.routing.load_routing``. Messages name the key path (``alerts.tables``).
"""

from __future__ import annotations

from typing import Annotated, Any

from pydantic import BaseModel, BeforeValidator, ConfigDict, Field, StringConstraints

PHRASES = {
    "missing": "required",
    "extra_forbidden": "unknown setting (check the spelling)",
    "model_type": "expected a table",
    "model_attributes_type": "expected a table",
    "dict_type": "expected a table",
    "string_type": "required text",
    "string_too_short": "required text",
    "tuple_type": "expected a list",
    "int_type": "expected a whole number",
    "int_parsing": "expected a whole number",
    "int_from_float": "expected a whole number",
    "float_type": "expected a number",
    "float_parsing": "expected a number",
    "bool_type": "expected true or false",
    "bool_parsing": "expected true or false",
    "list_item": "expected a list of text",
}


def _one_or_many(value: Any) -> Any:
    """A bare string is a list of one (``page_channels = "wctp"``)."""
    return [value] if isinstance(value, str) else value


def _text_of(value: Any) -> Any:
    """Names and addresses as text: a pager number may be written as a TOML integer, a time or
    a date as a TOML time or date."""
    return value if isinstance(value, dict | list) else str(value)


Text = Annotated[str, StringConstraints(min_length=1)]  # required, not empty
Loose = Annotated[str, BeforeValidator(_text_of)]
Texts = Annotated[tuple[str, ...], BeforeValidator(_one_or_many)]


class _Table(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class PolicyTable(_Table):
    critical_minutes: float
    high_minutes: float
    repeat: int = 0
    ack_timeout_minutes: float = 0  # 0: an ack holds until resolution


class PersonTable(_Table):
    name: Loose = ""
    contacts: dict[str, Loose] = {}  # channel -> address on it
    provider_ids: Texts = ()


class TierTable(_Table):
    members: Texts = ()
    start: Text  # local date, ISO
    handoff: Loose = "08:00"
    length_days: int = 7


class OverrideTable(_Table):
    tier: int = 1
    person: Text
    start: Loose
    end: Loose
    reason: Loose = ""  # for the reader of the file


class TeamTable(_Table):
    name: Loose = ""
    policy: Text
    page_channels: Texts = ()
    notify: dict[str, Loose] = {}  # channel -> address for warnings
    tiers: tuple[TierTable, ...] = ()
    overrides: tuple[OverrideTable, ...] = ()
    add_ordering_provider: bool = False


class RouteTable(_Table):
    team: Text
    name: Loose = ""
    rules: Texts = ()
    severities: Texts = ()
    locations: Texts = ()  # shell-style patterns on the point of care
    facilities: Texts = ()
    services: Texts = ()


class FallbackTable(_Table):
    team: Text
    channels: Texts = ()


class CorrectiveTable(BaseModel):
    """``routes`` (reserved) and, under any other key, an analyte's corrective drug keys."""

    model_config = ConfigDict(extra="allow", frozen=True)
    __pydantic_extra__: dict[str, Texts] = Field(init=False)

    routes: Texts = ()

    @property
    def analytes(self) -> dict[str, tuple[str, ...]]:
        return dict(self.__pydantic_extra__)


class RoutingFile(_Table):
    people: dict[str, PersonTable] = {}
    teams: dict[str, TeamTable] = {}
    routes: tuple[RouteTable, ...] = ()
    fallback: FallbackTable
    policies: dict[str, PolicyTable] = {}
    corrective: CorrectiveTable = CorrectiveTable()
