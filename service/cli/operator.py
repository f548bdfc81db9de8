"""Who ran a command: the one identity the command line can vouch for."""

from __future__ import annotations

import getpass
import os


def operator_account() -> str:
    """``cli:<login>`` of whoever runs the command (that account holds the database
    credentials); an acknowledgement keeps the typed ``--by`` name beside it."""
    try:
        return f"cli:{getpass.getuser()}"
    except (KeyError, OSError):  # a container user with no passwd entry
        return f"cli:uid {os.getuid()}"
