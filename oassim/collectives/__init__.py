"""oassim.collectives layer (see DESIGN.md)."""
