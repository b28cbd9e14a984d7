"""Pytest fixtures that hand the real parts to tests (filled by the test-environment work)."""
