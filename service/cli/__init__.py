"""The `labsentinel` command line: ``main`` parses and dispatches; subcommand groups, one
module per concern, are listed in ``main.COMMAND_MODULES``.

Each group module exposes ``COMMANDS`` (the top-level command names it owns),
``register(subparsers, config_args)`` that adds its parsers, and
``handle(args, settings) -> int`` that runs one of them with validated settings.
"""
