"""Topology layer: family builders (array-backed cluster graphs, a networkx view on demand),
design-rule checks, the frozen ``Fabric``, structural routing and structural metrics."""
