"""Engine-specific helpers (llama.cpp, vLLM) shared by the fit planner and the backends."""
