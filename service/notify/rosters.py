"""The roster files on disk: the routing file and the roster changes beside it.

``routing.config`` (e.g. ``configs/routing.toml``) holds teams, rotations and routes; the
roster changes (``alerts.roster_state``: operator overrides, imported iCalendar shifts) live
in ``<routing file stem>.oncall.json`` in the same folder (``configs/routing.oncall.json``),
written only here: under an exclusive lock (two operators adding overrides at once both
land) and atomically (a temporary file in the same folder, fsynced, then renamed over the
old one), so the daemon reading it on SIGHUP never sees half a file.

``read_routing`` reads both, uncached, and validates them together; the daemon's reload and
``service.notify.delivery.load_team_routing`` use it. No patient data is ever in these files.
"""

from __future__ import annotations

import fcntl
import hashlib
import json
import os
import tempfile
import tomllib
from collections.abc import Callable, Iterable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from zoneinfo import ZoneInfo

from alerts.roster_state import RosterError, RosterState, apply_state, parse_state, to_doc
from alerts.routing import RoutingConfig, RoutingError, load_routing
from service.runtime.settings import ConfigError, Settings

STATE_SUFFIX = ".oncall.json"


@dataclass(frozen=True)
class LoadedRouting:
    """A validated routing with the roster changes applied, and which file contents made it."""

    routing: RoutingConfig
    version: str  # sha256 (first 12 hex digits) of the routing file and the roster changes
    files: tuple[Path, ...]


def routing_path(settings: Settings) -> Path:
    """The routing file of ``settings``. Raises ConfigError when none is configured."""
    if not settings.routing.config:
        raise ConfigError("config key 'routing.config': no routing file configured")
    return settings.resolve_path(settings.routing.config)


def state_path(routing_file: Path) -> Path:
    """Where the roster changes of ``routing_file`` live (beside it)."""
    return routing_file.with_name(routing_file.stem + STATE_SUFFIX)


def stamp(routing_file: Path) -> tuple[int, int]:
    """(mtime_ns of the routing file, of the roster changes; 0 when absent): a cache key."""
    return tuple(  # type: ignore[return-value]
        p.stat().st_mtime_ns if p.exists() else 0 for p in (routing_file, state_path(routing_file))
    )


def read_state(path: Path) -> RosterState:
    """The roster changes in ``path`` (none when the file does not exist). Raises ConfigError
    naming the file and the key."""
    try:
        raw = path.read_bytes()
    except FileNotFoundError:
        return RosterState()
    try:
        return parse_state(json.loads(raw))
    except json.JSONDecodeError as exc:
        raise ConfigError(f"{path}: not valid JSON (line {exc.lineno}: {exc.msg})") from None
    except RosterError as exc:
        raise ConfigError(f"{path}: {exc}") from None


def read_routing(routing_file: Path, zone: ZoneInfo, channels: Iterable[str]) -> LoadedRouting:
    """Read and validate the routing file and its roster changes (uncached). Raises
    ConfigError naming the file and the key; blocks on reading both files."""
    try:
        routing_bytes = routing_file.read_bytes()
    except FileNotFoundError:
        raise ConfigError(f"config key 'routing.config': file not found: {routing_file}") from None
    try:
        doc = tomllib.loads(routing_bytes.decode("utf-8"))
    except (tomllib.TOMLDecodeError, UnicodeDecodeError) as exc:
        raise ConfigError(
            f"config key 'routing.config': {routing_file} is not valid TOML: {exc}"
        ) from None
    try:
        routing = load_routing(doc, zone, tuple(channels))
    except RoutingError as exc:
        raise ConfigError(f"{routing_file}: {exc}") from None
    changes = state_path(routing_file)
    state = read_state(changes)
    try:
        routing = apply_state(routing, state)
    except RosterError as exc:
        raise ConfigError(f"{changes}: {exc}") from None
    digest = hashlib.sha256(routing_bytes)
    digest.update(changes.read_bytes() if changes.exists() else b"")
    return LoadedRouting(routing, digest.hexdigest()[:12], (routing_file, changes))


@contextmanager
def _locked(path: Path) -> Iterator[None]:
    lock = path.with_name(path.name + ".lock")
    with lock.open("a") as fh:
        fcntl.flock(fh.fileno(), fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(fh.fileno(), fcntl.LOCK_UN)


def write_state(path: Path, state: RosterState) -> None:
    """Replace ``path`` with ``state`` atomically (same-folder temporary file, fsync, rename)."""
    text = json.dumps(to_doc(state), indent=2, sort_keys=True) + "\n"
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", dir=path.parent)
    try:
        # mkstemp makes the file private (0600); keep the old file's mode (else 0644), so a
        # daemon running as another user can still read it. It holds no secret.
        os.chmod(tmp, path.stat().st_mode & 0o777 if path.exists() else 0o644)
        with os.fdopen(fd, "w", encoding="utf-8") as fh:
            fh.write(text)
            fh.flush()
            os.fsync(fh.fileno())
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


def update_state(routing_file: Path, change: Callable[[RosterState], RosterState]) -> RosterState:
    """Read the roster changes, apply ``change`` and write the result, under the lock.
    ``change`` raises to abort (nothing is written). Returns the new state."""
    path = state_path(routing_file)
    with _locked(path):
        new = change(read_state(path))
        write_state(path, new)
    return new
