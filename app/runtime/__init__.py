"""Running backends: hosts (Docker engines or local processes), their lifecycle and health."""
