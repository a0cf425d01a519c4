"""oassim.analysis layer (see DESIGN.md)."""
