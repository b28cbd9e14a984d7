"""Roles: a LoRA adapter (or none) + system prompt + sampling + thinking default."""
