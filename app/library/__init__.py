"""The model and adapter library: reading GGUF, safetensors, HF and PEFT files, and the index.

Entry points: `loader.load_model` (the fit planner), `loader.load_entry` (any path),
`gguf.read_gguf_header` (header and tensor table), `library.Library` (the service with
`added` / `changed` / `removed` / `scanned` events), `compat.check_compatibility`.
"""
