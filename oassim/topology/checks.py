"""Design-rule checks on a built cluster graph.

Each rule returns :class:`Violation` records that name the component and the rule, so
``oassim topo check`` can print one clear line per violation. The rules are those a fabric
architect checks before ordering parts: ports beyond a switch's radix, links whose two ends run
at different rates, copper beyond its reach, optical links longer than their module's reach,
ports left unconnected, accelerators cut off from
the rest, and optical module counts that do not add up.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Callable

if TYPE_CHECKING:
    import networkx as nx

__all__ = ["Violation", "RULES", "check_graph"]


@dataclass(frozen=True)
class Violation:
    """One broken design rule: ``rule`` id, the component it names, and a sentence."""

    rule: str
    component: str
    message: str

    def __str__(self) -> str:
        return f"[{self.rule}] {self.component}: {self.message}"


def describe(g: nx.Graph, n: int) -> str:
    """A component name a person can find: kind, id, tier, part, domain/pod."""
    d = g.nodes[n]
    bits = [d["tier"]]
    if d.get("spec"):
        bits.append(str(d["spec"]))
    if d.get("domain", -1) >= 0:
        bits.append(f"supernode {d['domain']}")
    if d.get("pod", -1) >= 0 and d["kind"] != "accelerator":
        bits.append(f"pod {d['pod']}")
    if d.get("plane", -1) >= 0:
        bits.append(f"plane {d['plane']}")
    label = f"rank {d['rank']}" if d["kind"] == "accelerator" else f"node {n}"
    return f"{d['kind']} {label} ({', '.join(bits)})"


def _edge_name(g: nx.Graph, u: int, v: int) -> str:
    e = g.edges[u, v]
    return f"link {describe(g, u)} <-> {describe(g, v)} [{e['tier']}, {e['link']}]"


def check_radix(g: nx.Graph) -> list[Violation]:
    """A switch (or OCS) may not use more ports than its radix."""
    used: dict[int, int] = {}
    for u, v, e in g.edges(data=True):
        c = int(e.get("count", 1))
        used[u] = used.get(u, 0) + c
        used[v] = used.get(v, 0) + c
        ocs = e.get("ocs")
        if ocs is not None:
            used[ocs] = used.get(ocs, 0) + 2 * c
    out = []
    for n, d in g.nodes(data=True):
        if d["kind"] in ("switch", "ocs") and d.get("radix") is not None and used.get(n, 0) > d["radix"]:
            out.append(
                Violation("radix", describe(g, n), f"{used[n]} ports used, radix is {d['radix']}")
            )
    return out


def check_rates(g: nx.Graph) -> list[Violation]:
    """Both ends of a link must run at the link's port rate."""
    out = []
    for u, v, e in g.edges(data=True):
        rate = e.get("rate_Gbps")
        if rate is None or e["tier"] == "nic":
            continue
        for n in (u, v):
            pr = g.nodes[n].get("port_rate_Gbps")
            if pr is not None and abs(pr - rate) > 1e-6 * max(pr, rate):
                out.append(
                    Violation(
                        "rate-mismatch",
                        _edge_name(g, u, v),
                        f"link runs at {rate:g} Gb/s but {describe(g, n)} ports run at {pr:g} Gb/s",
                    )
                )
    return out


def check_reach(g: nx.Graph) -> list[Violation]:
    """A copper link may not be longer than its cable's reach."""
    out = []
    for u, v, e in g.edges(data=True):
        length, reach = e.get("length_m"), e.get("reach_m")
        if e["medium"] == "copper" and length is not None and reach is not None and length > reach:
            out.append(
                Violation("reach", _edge_name(g, u, v), f"copper run of {length:g} m exceeds reach {reach:g} m")
            )
    return out


def check_optical_reach(g: nx.Graph) -> list[Violation]:
    """An optical link may not be longer than its module's reach (an SR4 module on multimode
    fibre covers 50 m, a DR4 500 m: calibration source S65)."""
    out = []
    modules: dict[str, Any] = g.graph.get("modules", {})
    for u, v, e in g.edges(data=True):
        length, m = e.get("length_m"), modules.get(e.get("module"))
        if e["medium"] != "optical" or length is None or m is None or m.reach_m is None:
            continue
        if length > m.reach_m:
            out.append(Violation("optical-reach", _edge_name(g, u, v),
                                 f"optical run of {length:g} m exceeds module {m.name}'s reach {m.reach_m:g} m"))
    return out


def check_unconnected(g: nx.Graph) -> list[Violation]:
    """Every declared port of an accelerator (scale-up) and NIC is wired."""
    out = []
    # a cluster without a scale-up domain leaves accelerators' scale-up ports unused on purpose
    no_scaleup = g.graph.get("family") == "cluster" and g.graph.get("supernode_family") is None
    kinds = ("nic",) if no_scaleup else ("accelerator", "nic")
    for n, d in g.nodes(data=True):
        ports = d.get("ports")
        if ports is None or d["kind"] not in kinds:
            continue
        used = sum(int(e.get("count", 1)) for _, _, e in g.edges(n, data=True) if e["tier"] != "nic")
        if used < ports:
            what = "scale-up ports" if d["kind"] == "accelerator" else "ports"
            out.append(Violation("unconnected-port", describe(g, n), f"{ports - used} of {ports} {what} unconnected"))
    return out


def check_connected(g: nx.Graph) -> list[Violation]:
    """Every accelerator can reach every other."""
    acc = [n for n, d in g.nodes(data=True) if d["kind"] == "accelerator"]
    if not acc:
        return []
    import networkx as nx

    from oassim.topology.graph import as_networkx

    main = nx.node_connected_component(as_networkx(g), acc[0])
    return [
        Violation("disconnected", describe(g, n), f"cannot reach {describe(g, acc[0])}")
        for n in acc
        if n not in main
    ]


def check_modules(g: nx.Graph) -> list[Violation]:
    """Optical links carry optical modules of the link's rate; totals match published counts."""
    out = []
    modules: dict[str, Any] = g.graph.get("modules", {})
    for u, v, e in g.edges(data=True):
        mod = e.get("module")
        if e["medium"] == "optical" and mod is None and e.get("ocs") is None:
            out.append(Violation("module-count", _edge_name(g, u, v), "optical link without an optical module"))
            continue
        if mod is None:
            continue
        m = modules.get(mod)
        if m is not None:
            if m.medium != e["medium"]:
                out.append(
                    Violation("module-count", _edge_name(g, u, v), f"{m.medium} module {mod} on a {e['medium']} link")
                )
            rate = e.get("rate_Gbps")
            # a twin-port module serves two links; a module slower than the link cannot carry it
            if rate is not None and m.rate_Gbps + 1e-9 < rate:
                out.append(
                    Violation("module-count", _edge_name(g, u, v),
                              f"module {mod} is {m.rate_Gbps:g} Gb/s, link needs {rate:g} Gb/s")
                )
    expected = (g.graph.get("resolved") and g.graph["resolved"].spec.expected) or {}
    want = expected.get("optical_modules")
    if want is not None:
        from oassim.topology.metrics import optical_module_counts

        total = sum(optical_module_counts(g).values())
    if want is not None and int(want) != total:
        out.append(
            Violation("module-count", f"cluster {g.graph.get('name', '')}",
                      f"{total} optical modules built, {int(want)} expected")
        )
    return out


RULES: dict[str, Callable[[nx.Graph], list[Violation]]] = {
    "radix": check_radix,
    "rate-mismatch": check_rates,
    "reach": check_reach,
    "optical-reach": check_optical_reach,
    "unconnected-port": check_unconnected,
    "disconnected": check_connected,
    "module-count": check_modules,
}


def check_graph(g: nx.Graph, rules: list[str] | None = None) -> list[Violation]:
    """Run the design rules (all by default) and return every violation found."""
    from oassim.topology.graph import as_networkx

    g = as_networkx(g)
    out: list[Violation] = []
    for name in rules or list(RULES):
        out.extend(RULES[name](g))
    return out
