"""oassim.scheduler layer (see DESIGN.md)."""
