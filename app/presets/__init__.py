"""Named request + launch settings (think / no-think, sampling, context, experts)."""
