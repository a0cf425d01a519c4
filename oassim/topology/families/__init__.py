"""oassim.topology.families layer (see docs/architecture.md)."""
