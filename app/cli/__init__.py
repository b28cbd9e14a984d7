"""The `rigdeck` command line: one module per subcommand under `app.cli.commands`."""
