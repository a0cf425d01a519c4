"""oassim.experiments layer (see DESIGN.md)."""
