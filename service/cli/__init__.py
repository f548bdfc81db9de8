"""Subcommand groups of the `labsentinel` CLI, one module per concern.

Each module exposes ``COMMANDS`` (the top-level command names it owns),
``register(subparsers, config_args)`` that adds its parsers, and
``handle(args, settings) -> int`` that runs one of them with validated settings.
"""

MODULES = ("service.cli.paging", "service.cli.ops", "service.cli.reliability")
