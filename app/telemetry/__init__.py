"""Telemetry: samplers for GPUs and the host, history, alerts, replay and the sampling loop.

Qt-free: the UI reads the latest snapshot and the history from `MonitorService`.
"""
