"""Errors that reach users as one line.

Every problem with user input (a spec file, a CLI argument) is raised as a :class:`SpecError`
that names the file, the key path and what is allowed. The CLI prints ``str(err)`` and exits
with status 2; no traceback is ever shown for bad input.
"""

from __future__ import annotations

__all__ = ["OassimError", "SpecError", "MAX_LINE", "clip", "one_line", "describe_value"]

# Longest error line printed (after ``oassim: error: ``): a message names a file, a key path and
# what is allowed (the 30 keys of ``parallelism`` take 224 characters); anything longer is input
# echoed back (a 5,000-character value, a path of 300 characters), which helps nobody and can be
# made to fill a terminal or a log. Echoed pieces are cut shorter still: file names and key paths
# to MAX_PART, values to 40 characters (describe_value).
MAX_LINE = 400
# Longest file name or key path kept whole in a message.
MAX_PART = 120


class OassimError(Exception):
    """Base class of every error oassim raises on purpose."""


def one_line(text: object) -> str:
    """Fold ordinary whitespace to single spaces and escape any other unprintable character,
    so a message always stays on one line."""
    folded = " ".join(str(text).replace("\t", " ").replace("\r", " ").replace("\n", " ").split(" "))
    folded = " ".join(w for w in folded.split(" ") if w)
    return "".join(c if c.isprintable() else c.encode("unicode_escape").decode("ascii") for c in folded)


def clip(text: str, limit: int = MAX_PART) -> str:
    """``text`` cut to ``limit`` characters, its start and end kept around an ellipsis (a file
    name's end says most; a key path's start)."""
    if len(text) <= limit:
        return text
    head = (limit - 3) // 2
    return f"{text[:head]}...{text[len(text) - (limit - 3 - head):]}"


def describe_value(value: object, limit: int = 40) -> str:
    """A value for a message: its repr when short, else its type and size (never its content)."""
    if isinstance(value, int) and not isinstance(value, bool) and value.bit_length() > 128:
        # repr of a huge int is slow and past 4,300 digits an error (Python's int-str limit)
        return f"an integer of about {int(value.bit_length() * 0.30103) + 1:,} digits"
    if isinstance(value, (list, tuple, dict, set)) and len(value) > limit:
        return f"a {type(value).__name__} of {len(value):,} items"
    if isinstance(value, str) and len(value) > limit:
        return f"a text of {len(value):,} characters"
    try:
        text = repr(value)
    except (ValueError, RecursionError):
        text = ""
    if text and len(text) <= limit and text.isprintable():
        return text
    if isinstance(value, str):
        return f"a text of {len(value):,} characters"
    return f"a {type(value).__name__} value"


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
        self.message = one_line(clip(str(message), 4 * MAX_LINE))
        self.source = clip(one_line(clip(str(source), 4 * MAX_PART))) if source is not None else None
        self.path = clip(one_line(clip(str(path), 4 * MAX_PART))) if path is not None else None
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
        head = "".join(f"{w}: " for w in where)
        return head + clip(self.message, max(MAX_LINE - len(head), 40))
