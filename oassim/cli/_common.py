"""Shared pieces of the ``oassim`` subcommands: the one-line-error parser and argument types."""

from __future__ import annotations

import argparse

from oassim.errors import MAX_LINE, clip, one_line

__all__ = ["Parser", "positive_int", "accelerator_count", "error_line"]


def error_line(text: object) -> str:
    """``oassim: error: TEXT`` as one line of bounded length (arguments are echoed clipped)."""
    return f"oassim: error: {clip(one_line(clip(str(text), 4 * MAX_LINE)), MAX_LINE)}\n"


class Parser(argparse.ArgumentParser):
    """argparse that reports usage errors in one line with exit status 2."""

    def error(self, message: str) -> None:  # type: ignore[override]
        self.exit(2, error_line(f"{self.prog}: {message} (see {self.prog} --help)"))


def positive_int(text: str) -> int:
    try:
        v = int(text.replace("_", ""))
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected a whole number, got {clip(text, 40)!r}") from None
    if v <= 0:
        raise argparse.ArgumentTypeError(f"must be > 0, got {v}")
    return v


def accelerator_count(text: str) -> int:
    """``-n/--accelerators``: a whole number from 1 to the largest count a cluster file holds."""
    from oassim.topology.cluster_spec import ClusterSpec

    v = positive_int(text)
    limit = next(m.le for m in ClusterSpec.model_fields["accelerators"].metadata if getattr(m, "le", None))
    if v > limit:
        raise argparse.ArgumentTypeError(f"must be at most {limit:,} (the largest cluster oassim builds), got {v:,}")
    return v
