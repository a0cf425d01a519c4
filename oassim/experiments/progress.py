"""A dependency-free progress line for sweeps: points done, failed, rate and time left.

What it shows: ``sweep NAME: 412/1,000 done (3 failed, 120 from earlier runs) 3.4 points/s,
2m53s left``. On a terminal the line is redrawn in place with a carriage return (at most ten
times a second); otherwise (a log file, CI) a plain line is printed now and then (every 10% of
the points or every 30 s, whichever comes first) and at the end, so logs stay short. The rate
counts only the points computed by this run, so reused points do not inflate it.
"""

from __future__ import annotations

import sys
import time
from typing import TextIO

__all__ = ["Progress", "format_duration"]


def format_duration(seconds: float) -> str:
    """``3h02m``, ``2m53s`` or ``7s``."""
    s = int(round(max(0.0, seconds)))
    if s >= 3600:
        return f"{s // 3600}h{s % 3600 // 60:02d}m"
    if s >= 60:
        return f"{s // 60}m{s % 60:02d}s"
    return f"{s}s"


class Progress:
    """Progress of a sweep on a text stream.

    Parameters
    ----------
    total : int
        Points of the sweep.
    reused : int
        Points already in the store (counted as done, not in the rate).
    name : str
        Shown at the start of the line.
    stream : text stream, optional
        Default ``sys.stderr``.
    quiet : bool
        Print nothing.
    """

    def __init__(self, total: int, reused: int = 0, *, name: str = "sweep", stream: TextIO | None = None,
                 quiet: bool = False):
        self.total, self.reused, self.name = int(total), int(reused), name
        self.stream = stream if stream is not None else sys.stderr
        self.quiet = quiet
        self.done = self.failed = 0
        self.t0 = self._last = time.monotonic()
        self._last_frac = 0.0
        try:
            self.tty = bool(self.stream.isatty())
        except (AttributeError, ValueError):
            self.tty = False
        self._width = 0

    @property
    def rate(self) -> float:
        """Points computed per second by this run."""
        dt = time.monotonic() - self.t0
        return self.done / dt if dt > 0 else 0.0

    def line(self) -> str:
        """The current progress text."""
        finished = self.reused + self.done
        parts = [f"{self.failed:,} failed"]
        if self.reused:
            parts.append(f"{self.reused:,} from earlier runs")
        text = f"{self.name}: {finished:,}/{self.total:,} done ({', '.join(parts)})"
        if self.done:
            left = (self.total - finished) / self.rate if self.rate > 0 else float("inf")
            text += f", {self.rate:.2f} points/s"
            if finished < self.total and left != float("inf"):
                text += f", {format_duration(left)} left"
        return text

    def update(self, ok: bool = True) -> None:
        """Count one finished point (``ok`` False: it failed) and maybe redraw."""
        self.done += 1
        self.failed += 0 if ok else 1
        if self.quiet:
            return
        now = time.monotonic()
        finished = self.reused + self.done
        frac = finished / self.total if self.total else 1.0
        if self.tty:
            if now - self._last >= 0.1 or finished >= self.total:
                self._draw()
                self._last = now
        elif frac - self._last_frac >= 0.1 or now - self._last >= 30.0:
            self.stream.write(self.line() + "\n")
            self.stream.flush()
            self._last, self._last_frac = now, frac

    def start(self) -> None:
        """Show the line once before the first point finishes."""
        if self.quiet:
            return
        if self.tty:
            self._draw()
        else:
            self.stream.write(self.line() + "\n")
            self.stream.flush()

    def _draw(self) -> None:
        text = self.line()
        pad = max(0, self._width - len(text))
        self._width = len(text)
        self.stream.write("\r" + text + " " * pad)
        self.stream.flush()

    def close(self) -> None:
        """Final line (ends the terminal line)."""
        if self.quiet:
            return
        elapsed = format_duration(time.monotonic() - self.t0)
        if self.tty:
            self._draw()
            self.stream.write(f" in {elapsed}\n")
        else:
            self.stream.write(self.line() + f" in {elapsed}\n")
        self.stream.flush()

    def abort(self) -> None:
        """End a terminal line cut short (an error or Ctrl-C follows on its own line)."""
        if not self.quiet and self.tty and self._width:
            self.stream.write("\n")
            self.stream.flush()
