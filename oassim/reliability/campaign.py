"""A training campaign under failures: seeded SimPy replay of failures, restarts and checkpoints.

What is modelled: one job holds the whole cluster for ``days``. It computes for ``tau`` and
then blocks ``delta`` writing a checkpoint, over and over. Every exposure
(:mod:`oassim.reliability.exposure`) fails as a Poisson process over wall time. A ``stop``
failure loses the work since the last completed checkpoint, then costs detection plus restart;
when it takes hardware out, the restart takes spares from the pool or waits until a repair
puts units back, and the failed units return to the pool after the repair time (a heap of
repair completions the job process waits on with one timeout, not a SimPy process per
repair). A ``degraded`` failure slows the job by ``comm_fraction`` times the exposure's
degraded slowdown (re-costed by the network model, or ``f / (1 - f)``) until its repair (and,
with ``link_loss="stop"``, also stops it first); overlapping degradations on different
elements slow the synchronous job as much as the worst of them; stragglers slow it by a
constant fraction throughout. Failures that arrive while the job is down add a restart (they
are interruptions too) but lose no work.

Why this shape: docs/architecture.md decision 13 and conventions (borrow the event kernel,
one event per operation). Failure times are drawn up front with numpy (vectorised: one
Poisson count, uniform times and a categorical cause per sample), and the SimPy process only
steps from one failure, awaited repair or restart to the next (two events per failure),
accounting the compute and checkpoint time of each interval in closed form; so a 54-day,
16,384-accelerator campaign of ~450 failures costs about a thousand events per sample. Samples use child seeds of
``numpy.random.SeedSequence(seed)`` (decision 9): same inputs and seed, same result.
"""

from __future__ import annotations

import heapq
from dataclasses import dataclass, field

import numpy as np
import simpy

from oassim.reliability.exposure import Exposure

__all__ = ["CampaignParams", "SampleTally", "simulate_samples", "TIME_KEYS"]

#: Where the wall time of a campaign goes (hours; they sum to the campaign length).
TIME_KEYS = ("useful", "checkpoint", "rework", "restart", "spare_wait", "degraded", "straggler")


@dataclass(frozen=True)
class CampaignParams:
    """Operating parameters of a campaign (SI seconds except where named).

    ``interval_s`` is the compute time between checkpoints, ``write_s`` the checkpoint write
    time, ``detect_s`` + ``restart_s`` the time from a failure to training again, ``repair_h``
    the time a failed part is out, ``spare_accelerators`` the pool, ``straggler_slowdown`` a
    constant fractional slowdown and ``comm_fraction`` the share of the iteration a degraded
    tier's bandwidth sets. ``link_loss`` says what a ``degraded`` failure (a fabric link, a
    spine) does to a running job: ``"stop"``, single-path RDMA connections break, the job
    stops and restarts on the rerouted fabric and runs degraded until the repair (what the
    Llama 3 table shows: network failures interrupted the job); ``"degrade"``, the transport
    survives (multipath or dual-plane), the job only runs degraded.
    """

    days: float
    interval_s: float
    write_s: float
    detect_s: float
    restart_s: float
    repair_h: float
    spare_accelerators: int
    straggler_slowdown: float = 0.0
    comm_fraction: float = 1.0
    link_loss: str = "stop"


@dataclass
class SampleTally:
    """One campaign's outcome: interruptions and hours by category, cause and component."""

    interruptions: int = 0
    failures: int = 0
    time: dict[str, float] = field(default_factory=lambda: dict.fromkeys(TIME_KEYS, 0.0))
    by_cause: dict[str, float] = field(default_factory=dict)
    by_component: dict[str, float] = field(default_factory=dict)
    interruptions_by_cause: dict[str, int] = field(default_factory=dict)

    def lose(self, exp: Exposure | None, key: str, hours: float) -> None:
        if hours <= 0:
            return
        self.time[key] += hours
        cause, comp = ("straggler", "straggler") if exp is None else (exp.cause, exp.component)
        self.by_cause[cause] = self.by_cause.get(cause, 0.0) + hours
        self.by_component[comp] = self.by_component.get(comp, 0.0) + hours


class _Job:
    """The job's checkpoint cycle, advanced in closed form over intervals of constant speed."""

    def __init__(self, p: CampaignParams, tally: SampleTally):
        self.tau = p.interval_s / 3600.0
        self.cycle = self.tau + p.write_s / 3600.0
        self.offset = 0.0  # wall hours since the last completed checkpoint
        self.work = 0.0  # full-speed hours of work since the last completed checkpoint
        self.p, self.tally = p, tally
        self.slow: list[tuple[float, float, Exposure]] = []  # (end, slowdown, exposure)

    def _compute_in(self, x: float) -> float:
        """Compute wall time in [0, x) of the cycle pattern (compute tau, then write)."""
        n, r = divmod(x, self.cycle)
        return n * self.tau + min(r, self.tau)

    def run(self, t0: float, t1: float) -> None:
        """Account running from t0 to t1 (hours), splitting at the ends of slowdowns."""
        while t0 < t1:
            ends = [e for e, _, _ in self.slow if t0 < e < t1]
            t = min(ends) if ends else t1
            self._segment(t - t0, [(s, x) for e, s, x in self.slow if e > t0])
            self.slow = [d for d in self.slow if d[0] > t]
            t0 = t

    def _segment(self, length: float, active: list[tuple[float, Exposure]]) -> None:
        # A synchronous job runs at the pace of its slowest rank: of several degradations on
        # different elements only the worst one counts (they rarely hit the same element).
        strag = self.p.straggler_slowdown
        worst = max(active, key=lambda a: a[0]) if active else None
        extra = strag + (worst[0] if worst else 0.0)
        speed = 1.0 / (1.0 + extra)
        o1 = self.offset + length
        comp = self._compute_in(o1) - self._compute_in(self.offset)
        self.tally.time["checkpoint"] += length - comp
        self.tally.time["useful"] += comp * speed
        lost = comp * (1.0 - speed)
        if lost > 0:  # shared between stragglers and the worst degradation in proportion
            self.tally.lose(None, "straggler", lost * strag / extra)
            if worst is not None:
                self.tally.lose(worst[1], "degraded", lost * worst[0] / extra)
        if o1 >= self.cycle:  # a checkpoint completed in this segment
            self.offset = o1 % self.cycle
            self.work = min(self.offset, self.tau) * speed
        else:
            self.work += comp * speed
            self.offset = o1

    def fail(self, exp: Exposure) -> None:
        """A stop failure while running: the work since the last checkpoint is lost."""
        self.tally.time["useful"] -= self.work
        self.tally.lose(exp, "rework", self.work)
        self.work, self.offset = 0.0, 0.0


def _campaign(env: simpy.Environment, p: CampaignParams, exps: list[Exposure], times: np.ndarray,
              kinds: np.ndarray, tally: SampleTally, pending: list):
    horizon = p.days * 24.0
    job = _Job(p, tally)
    free = p.spare_accelerators  # spares on the shelf now
    back: list[tuple[float, int]] = []  # (time, units) the repairs under way put back on the shelf
    restart_h = (p.detect_s + p.restart_s) / 3600.0

    i, n = 0, len(times)
    while i < n:
        t = float(times[i])
        exp = exps[int(kinds[i])]
        i += 1
        tally.failures += 1
        if t > env.now:  # running until t (a failure during a restart is handled when it ends)
            job.run(env.now, t)
            yield env.timeout(t - env.now)
        if exp.action == "degraded":
            job.slow.append((t + p.repair_h, p.comm_fraction * exp.degraded_slowdown, exp))
            if p.link_loss == "degrade":
                continue
        tally.interruptions += 1
        tally.interruptions_by_cause[exp.cause] = tally.interruptions_by_cause.get(exp.cause, 0) + 1
        job.fail(exp)  # nothing to lose when it struck during a restart: the work is already 0
        if exp.units_out:
            # the failed units go to repair and come back after repair_h; the restart takes as
            # many spares, waiting for the earliest repairs when the shelf is short
            heapq.heappush(back, (env.now + p.repair_h, exp.units_out))
            pending[:] = [exp, env.now]
            while True:
                while back and back[0][0] <= env.now:
                    free += heapq.heappop(back)[1]
                if free >= exp.units_out:
                    break
                yield env.timeout(back[0][0] - env.now)
            free -= exp.units_out
            tally.lose(exp, "spare_wait", env.now - pending[1])
            pending.clear()
        wait = max(0.0, min(restart_h, horizon - env.now))
        tally.lose(exp, "restart", wait)
        yield env.timeout(wait)
    if env.now < horizon:
        job.run(env.now, horizon)


def simulate_samples(exps: list[Exposure], p: CampaignParams, samples: int, seed: int) -> list[SampleTally]:
    """Run ``samples`` independent campaigns, each with its own child seed.

    Returns
    -------
    list of SampleTally
        One per sample, in seed order.
    """
    horizon = p.days * 24.0
    rates = np.array([e.per_hour for e in exps], dtype=float)
    total = float(rates.sum())
    out = []
    for child in np.random.SeedSequence(seed).spawn(samples):
        rng = np.random.default_rng(child)
        n = int(rng.poisson(total * horizon)) if total > 0 else 0
        times = np.sort(rng.uniform(0.0, horizon, n))
        kinds = rng.choice(len(exps), size=n, p=rates / total) if n else np.zeros(0, dtype=int)
        tally = SampleTally()
        env = simpy.Environment()
        pending: list = []  # [exposure, since] while the job waits for spares
        env.process(_campaign(env, p, exps, times, kinds, tally, pending))
        env.run(until=horizon)
        if pending:  # still waiting for spares when the campaign ends
            tally.lose(pending[0], "spare_wait", horizon - pending[1])
        _clip(tally, horizon)
        out.append(tally)
    return out


def _clip(tally: SampleTally, horizon: float) -> None:
    """Downtime that outlasts the campaign is cut at its end (the hours still sum to it)."""
    over = sum(tally.time.values()) - horizon
    if over > 1e-9:
        for key in ("spare_wait", "restart"):
            cut = min(over, tally.time[key])
            tally.time[key] -= cut
            over -= cut
