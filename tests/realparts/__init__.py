"""Real parts for the test environment: Docker engine, llama-server, backend image, models.

Each module prepares one part by itself (installing or building what is missing) and
raises `PartMissing` with a readable reason when it cannot, so a fixture can fail the run
under CI=true or skip with that reason elsewhere.
"""


class PartMissing(RuntimeError):  # noqa: N818 - reads as a state in `except PartMissing`; other tests import this name
    """A real part the tests need could not be provided on this machine."""
