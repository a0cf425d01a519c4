"""Errors that reach users as one line.

Every problem with user input (a spec file, a CLI argument) is raised as a :class:`SpecError`
that names the file, the key path and what is allowed. The CLI prints ``str(err)`` and exits
with status 2; no traceback is ever shown for bad input.
"""

from __future__ import annotations

__all__ = ["OassimError", "SpecError"]


class OassimError(Exception):
    """Base class of every error oassim raises on purpose."""


def _one_line(text: object) -> str:
    """Fold ordinary whitespace to single spaces and escape any other unprintable character,
    so a message always stays on one line."""
    folded = " ".join(str(text).replace("\t", " ").replace("\r", " ").replace("\n", " ").split(" "))
    folded = " ".join(w for w in folded.split(" ") if w)
    return "".join(c if c.isprintable() else c.encode("unicode_escape").decode("ascii") for c in folded)


class SpecError(OassimError, ValueError):
    """Bad input: a spec file or argument that cannot be used.

    Parameters
    ----------
    message : str
        What is wrong and what is allowed, in one sentence.
    source : str, optional
        The file (or ``"--set"``, ``"argument --ranks"``...) the bad value came from.
    path : str, optional
        Dotted key path inside the source, e.g. ``"scale_out.switch"``.
    """

    def __init__(self, message: str, *, source: str | None = None, path: str | None = None):
        self.message = _one_line(message)
        self.source = _one_line(source) if source is not None else None
        self.path = _one_line(path) if path is not None else None
        super().__init__(self.__str__())

    def with_context(self, *, source: str | None = None, prefix: str | None = None) -> "SpecError":
        """Return a copy located in ``source`` with ``prefix`` prepended to the key path."""
        path = self.path
        if prefix:
            path = f"{prefix}.{path}" if path else prefix
        return SpecError(self.message, source=self.source or source, path=path)

    def __str__(self) -> str:
        where = []
        if self.source:
            where.append(str(self.source))
        if self.path:
            where.append(self.path)
        return ": ".join(where + [self.message]) if where else self.message
