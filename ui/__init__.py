"""Rigdeck's PySide6 front end: widgets and Qt models that adapt the `app` core."""
