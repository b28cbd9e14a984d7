"""Benchmarks: each compares Rigdeck with a reference measured in the same run."""
