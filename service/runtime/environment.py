"""Which environment variables with the settings' prefix name a setting, and which do not.

pydantic-settings ignores a variable whose section does not exist, so a typo such as
``LABSENTINEL_DATABSE_URL`` would silently leave the default in force; and a list or table that
is not JSON (``LABSENTINEL_API_TOKENS=nurse``) fails with an error naming only the section.
``environment_problems`` finds both before the settings are read, for ``settings.load_settings``
to refuse them. It takes the settings model as an argument so that this module does not import
``settings`` (which imports it).

The names accepted are exactly those the settings source reads (prefix, then the field, split
once after the section, matched case-insensitively): ``<PREFIX><FIELD>`` for every top-level
field (a section as one JSON object), ``<PREFIX><SECTION>_<KEY>`` for each key of a section,
and ``<PREFIX><TABLE>_<NAME>`` for a table of named entries (``LABSENTINEL_CHANNELS_PAGER``).
"""

from __future__ import annotations

import difflib
import json
import types
from collections.abc import Mapping
from typing import Any, Union, get_args, get_origin

from pydantic import BaseModel

# Variables with the prefix that are not settings (the daemon never reads them), accepted so
# that a shell set up for the tests or the soak run can still start the daemon.
NOT_SETTINGS = frozenset(
    {
        "LABSENTINEL_TEST_PG_URL",  # tests/conftest.py: the PostgreSQL the tests use
        "LABSENTINEL_REFERENCE_EXAMPLES",  # tests/alerts/reference: examples per run
        "LABSENTINEL_PG_BINDIR",  # `labsentinel soak`: where PostgreSQL's programs are
        "LABSENTINEL_KAFKA_CACHE",  # scripts/kafka, tests: where Apache Kafka's jars are kept
        "LABSENTINEL_TEST_BROKER",  # tests/conftest.py: the default of --broker
    }
)
# How close a name must be to a setting's to be suggested (difflib's ratio): a letter missing,
# doubled or swapped in a name of ten or more letters, not a different word.
NEAR_MISS = 0.75


def environment_problems(
    environ: Mapping[str, str], model: type[BaseModel], prefix: str
) -> list[str]:
    """One phrase per variable with ``prefix`` that names no setting of ``model`` or whose
    list or table is not JSON. Each names the variable and, for a near miss, the variable
    probably meant, never the value (it may be a secret). Pure; never raises.
    """
    known, tables = _names(model, prefix)
    problems = []
    for name, value in sorted(environ.items()):
        upper = name.upper()  # the settings source matches names case-insensitively
        if not upper.startswith(prefix) or upper in NOT_SETTINGS:
            continue
        target = known.get(upper) or _table_entry(upper, tables)
        if target is None:
            close = difflib.get_close_matches(upper, known, n=1, cutoff=NEAR_MISS)
            hint = f" (did you mean {close[0]}?)" if close else ""
            problems.append(f"unknown environment variable {name}{hint}")
        elif target[1] is not None and not _is_json(value):
            example = '\'["a", "b"]\'' if target[1] == "list" else '\'{"key": "value"}\''
            problems.append(
                f"environment variable {name} (setting '{target[0]}') is not a JSON "
                f"{target[1]}, e.g. {name}={example}"
            )
    return problems


Target = tuple[str, str | None]  # the setting's key, and the JSON it holds (list, object)


def _names(model: type[BaseModel], prefix: str) -> tuple[dict[str, Target], dict[str, Target]]:
    """Variable → target for every setting; variable prefix → target for tables of entries."""
    known: dict[str, Target] = {}
    tables: dict[str, Target] = {}
    for section, field in model.model_fields.items():
        annotation = field.annotation
        known[f"{prefix}{section}".upper()] = (section, _json_kind(annotation))
        if isinstance(annotation, type) and issubclass(annotation, BaseModel):
            for key, sub in annotation.model_fields.items():
                known[f"{prefix}{section}_{key}".upper()] = (
                    f"{section}.{key}",
                    _json_kind(sub.annotation),
                )
        elif get_origin(annotation) is dict:
            entry = get_args(annotation)[1]
            tables[f"{prefix}{section}_".upper()] = (section, _json_kind(entry))
    return known, tables


def _table_entry(name: str, tables: dict[str, Target]) -> Target | None:
    for start, (section, kind) in tables.items():
        if name.startswith(start) and len(name) > len(start):
            return f"{section}.{name[len(start) :].lower()}", kind
    return None


def _json_kind(annotation: Any) -> str | None:
    """``"list"`` or ``"object"`` when the settings source reads the value as JSON, else None."""
    origin = get_origin(annotation)
    if origin in (Union, types.UnionType):
        args = [a for a in get_args(annotation) if a is not type(None)]
        return _json_kind(args[0]) if len(args) == 1 else None
    if (origin or annotation) in (tuple, list, set, frozenset):
        return "list"
    if (origin or annotation) is dict or (
        isinstance(annotation, type) and issubclass(annotation, BaseModel)
    ):
        return "object"
    return None


def _is_json(value: str) -> bool:
    try:
        json.loads(value)
    except ValueError:
        return False
    return True
