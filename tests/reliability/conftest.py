"""Shared fixtures of the reliability tests: built clusters' counts, cached for the session."""

from __future__ import annotations

import pytest


@pytest.fixture(scope="session")
def counts_cache() -> dict:
    """(cluster reference, accelerators) -> (cluster_info, ResolvedCluster), built once."""
    return {}
