"""Topology layer: family builders (networkx), design-rule checks, the frozen ``Fabric``,
structural routing and structural metrics."""
