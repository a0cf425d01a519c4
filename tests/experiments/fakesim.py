"""A stand-in for ``oassim.scheduler.simulate`` used by the experiments tests.

It replays a plan naively (every stage alone, collectives costed as bytes / 100 GB/s, the
blocking ones exposed) and fills every column of the Results contract, so that the runner,
the CLI and the exports can be tested without depending on the scheduler's numbers.
"""

from __future__ import annotations

import pandas as pd

from oassim.scheduler.results import Results
from oassim.workload import CollectiveCall

BW = 100e9  # bytes/s
LAT = 5e-6  # s

OPS_COLUMNS = ["stage", "rank", "stream", "name", "kind", "dim", "microbatch", "chunk", "start_s", "end_s",
               "exposed_s"]
COLL_COLUMNS = ["stage", "dim", "op", "where", "size_bytes", "groups", "group_size", "algorithm", "start_s",
                "end_s", "time_s", "alone_s", "exposed_s", "busbw_GBps", "bottleneck_tier", "bottleneck_util"]
CALLS: list[dict] = []


def fake_simulate(plan, fabric, *, network="analytical", seed=0, full_rank=False, stragglers=None, engine=None,
                  replay="auto") -> Results:
    """Results of a naive replay of ``plan`` (see module docstring)."""
    CALLS.append({"network": network, "seed": seed, "full_rank": full_rank})
    ops, coll = [], []
    tiers = list(fabric.link_tier_names)
    end = 0.0
    for sp in plan.stages:
        t = sp.stage * 1e-4  # pipeline fill
        rank = int(sp.ranks[0])

        def replay(steps, mb, chunk):
            nonlocal t
            for x in steps:
                if isinstance(x, CollectiveCall):
                    dt = LAT + x.size_bytes / BW
                    exposed = 0.0 if x.overlappable else dt
                    tier = tiers[-1] if x.dim in ("dp", "pp") else tiers[0]
                    ops.append((sp.stage, rank, "comm", x.where.rsplit("/", 1)[-1], x.op, x.dim, mb, chunk,
                                t, t + dt, exposed))
                    coll.append((sp.stage, x.dim, x.op, x.where, x.size_bytes, x.n_groups, x.group_size, "ring",
                                 t, t + dt, dt, dt, exposed, x.size_bytes / dt / 1e9, tier, 0.95))
                    t += exposed
                else:
                    ops.append((sp.stage, rank, "compute", x.name, x.kind, "", mb, chunk, t, t + x.duration_s, 0.0))
                    t += x.duration_s

        for st in sp.schedule:
            c = sp.chunks[st.chunk]
            last = st.microbatch == plan.n_microbatches - 1
            steps = c.forward if st.kind == "F" else (c.backward_last if last else c.backward)
            replay(steps, st.microbatch, st.chunk)
        replay(sp.optimizer, -1, 0)
        end = max(end, t)
    n = max(1, len(tiers))
    link_util = pd.DataFrame({"t0_s": [0.0] * n + [end / 2] * n, "t1_s": [end / 2] * n + [end] * n,
                              "tier": tiers * 2, "utilisation": [0.2] * n + [0.6] * n, "bytes": [1e9] * (2 * n)})
    tier_df = pd.DataFrame({"tier": tiers, "links": [8] * n, "bytes": [2e9] * n, "busy_s": [end * 0.4] * n,
                            "utilisation": [0.4 + 0.01 * i for i in range(n)],
                            "max_link_utilisation": [0.97] * n})
    return Results(scenario={}, plan=plan, iteration_time_s=end, ops=pd.DataFrame(ops, columns=OPS_COLUMNS),
                   collectives=pd.DataFrame(coll, columns=COLL_COLUMNS), link_util=link_util, tiers=tier_df,
                   network=network, provenance={"simulate_s": 0.0})
