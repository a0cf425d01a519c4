"""Shared pieces of the ``oassim`` subcommands: the one-line-error parser and argument types."""

from __future__ import annotations

import argparse

__all__ = ["Parser", "positive_int"]


class Parser(argparse.ArgumentParser):
    """argparse that reports usage errors in one line with exit status 2."""

    def error(self, message: str) -> None:  # type: ignore[override]
        self.exit(2, f"oassim: error: {self.prog}: {message} (see {self.prog} --help)\n")


def positive_int(text: str) -> int:
    try:
        v = int(text.replace("_", ""))
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected a whole number, got {text!r}") from None
    if v <= 0:
        raise argparse.ArgumentTypeError(f"must be > 0, got {v}")
    return v
