"""oassim.topology.families layer (see DESIGN.md)."""
