"""oassim.network layer (see DESIGN.md)."""
