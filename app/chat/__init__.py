"""Chat with any OpenAI-compatible server: streaming client, reasoning split, history."""
