"""The fit planner: what a model and a launch plan will allocate on each device."""
