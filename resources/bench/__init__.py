"""Data files of the Bench: the default text llama-perplexity reads (see README.md here)."""
