"""oassim.hardware layer (see DESIGN.md)."""
