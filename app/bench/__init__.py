"""The Bench: A/B of presets on the user's own rig (speed, memory, perplexity per variant)."""
