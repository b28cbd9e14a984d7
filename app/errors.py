"""The one exception type for failures a user caused and can fix."""


class UserError(Exception):
    """A failure the user can act on: shown as its message, never as a traceback.

    The CLI prints it on stderr and exits with `exit_code`; the GUI shows it in the
    notifier. Its message says what went wrong and, where known, what to do.
    """

    def __init__(self, message: str, exit_code: int = 2) -> None:
        super().__init__(message)
        self.exit_code = exit_code
