"""oassim.workload layer (see DESIGN.md)."""
