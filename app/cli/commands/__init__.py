"""Subcommands of `rigdeck`, one module each.

A module here defines `register(subparsers)` that adds its parser and sets
`handler=<callable(args) -> int>` with `parser.set_defaults(handler=...)`. It is found by
itself: adding a subcommand is adding a module. Handlers raise `app.errors.UserError`
for failures the user caused; `main` turns that into a message and an exit code.
"""
