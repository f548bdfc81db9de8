"""Pydantic for the TOML config files of ``alerts`` (routing, drug and lab catalogs).

The files are validated once at start by pydantic models; a failure becomes one message that
names the key path the way the file spells it (``teams.icu.tiers[0].members``,
``analytes.phosphate.units.mmol/L``) followed by what was expected, so start-up fails loudly
and the operator knows which line to fix.

Three tools keep those messages in the project's words rather than pydantic's:

- ``said(phrase)`` on a leaf type replaces whatever pydantic would say with ``phrase``;
- ``key_error(key, message)``, raised from a model validator, blames one field of the model
  for a rule that spans several fields (the model itself does not know its own path);
- ``first_error`` turns the first error of a ``ValidationError`` into ``(path, message)``,
  with a table of phrases for pydantic's own error types (missing, unknown key, not a table).

``parse`` does all of it and raises ``TableError``; each config turns that into its own error
class and prefix (``CatalogError``, ``RoutingError``).
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import Any, TypeVar

from pydantic import BaseModel, ValidationError, ValidatorFunctionWrapHandler, WrapValidator
from pydantic_core import ErrorDetails, PydanticCustomError

_SAID = "config_said"
_KEY = "config_key"
# Locations pydantic adds for the key of a dict entry; the path is the entry's.
_KEY_MARKER = "[key]"
# "Not a table" errors: inside a list they name the entry (``tiers[0]``), not the list.
_TABLE_ERRORS = frozenset({"model_type", "model_attributes_type", "dict_type"})


_M = TypeVar("_M", bound=BaseModel)


class TableError(ValueError):
    """A config file does not have the expected shape: ``path`` is the key, ``message`` what
    was expected there."""

    def __init__(self, path: str, message: str) -> None:
        self.path = path
        self.message = message
        super().__init__(f"{path}: {message}")


def parse(model: type[_M], data: Any, phrases: Mapping[str, str]) -> _M:
    """``data`` (``tomllib`` output) validated as ``model``. Raises ``TableError`` for the first
    error, worded with ``phrases`` (see ``first_error``). Pure."""
    try:
        return model.model_validate(data)
    except ValidationError as exc:
        raise TableError(*first_error(exc, phrases)) from None


def said(phrase: str) -> WrapValidator:
    """Annotation for a leaf type: any failure of the type is reported as ``phrase``."""

    def check(value: Any, handler: ValidatorFunctionWrapHandler) -> Any:
        try:
            return handler(value)
        except ValidationError:
            raise PydanticCustomError(_SAID, phrase) from None

    return WrapValidator(check)


def one_of(choices: tuple[str, ...]) -> Callable[[str], str]:
    """An after-validator accepting only ``choices`` ("must be one of a, b")."""

    def check(value: str) -> str:
        if value not in choices:
            raise PydanticCustomError(_SAID, "must be one of " + ", ".join(c for c in choices if c))
        return value

    return check


def key_error(key: str, message: str) -> PydanticCustomError:
    """An error of field ``key`` found by a model validator (a rule across fields)."""
    return PydanticCustomError(_KEY, "{message}", {"key": key, "message": message})


def key_path(loc: tuple[int | str, ...]) -> str:
    """``("routes", 0, "team")`` -> ``routes[0].team``; the root is ``<root>``."""
    path = ""
    for part in loc:
        if part == _KEY_MARKER:
            continue
        path += f"[{part}]" if isinstance(part, int) else (f".{part}" if path else str(part))
    return path or "<root>"


def first_error(exc: ValidationError, phrases: Mapping[str, str]) -> tuple[str, str]:
    """(key path, message) of the first error of ``exc``.

    An error inside a list names the list (``names``, not ``names[1]``): the operator fixes the
    list. ``phrases`` maps pydantic error types to the file's own wording; others keep
    pydantic's message.
    """
    error: ErrorDetails = exc.errors(include_url=False)[0]
    loc = tuple(error["loc"])
    kind = error["type"]
    if kind == _KEY:
        ctx = error.get("ctx") or {}
        return key_path((*loc, str(ctx["key"]))), str(ctx["message"])
    item = bool(loc) and isinstance(loc[-1], int) and kind not in _TABLE_ERRORS
    if item:
        loc = loc[:-1]
    if kind == _SAID:
        return key_path(loc), error["msg"]
    if item and "list_item" in phrases:
        return key_path(loc), phrases["list_item"]
    return key_path(loc), phrases.get(kind, error["msg"])
