"""Graph walks the cost model needs: which LIF population each synaptic layer feeds, and the
post-pooling output size that SpikeSim's released VGG9 lists use.

The graph is the ``networkx.DiGraph`` of :mod:`codesign.graph.schema`. "Pass-through" nodes are
those that neither weigh (conv, linear) nor fire (LIF): pooling, flatten, add, output. What each
edge carries (spikes, multi-level, analog) is on the edge itself (:mod:`codesign.graph.signals`).
"""

from __future__ import annotations

from collections import deque
from dataclasses import dataclass
from typing import Optional

import networkx as nx

from codesign.errors import CodesignError
from codesign.graph.schema import SYNAPTIC_OPS, LIFLayer, PoolLayer


def layer(g: nx.DiGraph, node: str):
    """The layer dataclass of ``node``."""
    try:
        return g.nodes[node]["layer"]
    except KeyError:
        raise CodesignError(f"graph {g.graph.get('name', '?')!r}: node {node!r} has no "
                            "'layer' attribute") from None


def topo_order(g: nx.DiGraph) -> list[str]:
    """Nodes in topological order (refuses cycles)."""
    try:
        return list(nx.topological_sort(g))
    except nx.NetworkXUnfeasible:
        raise CodesignError(f"graph {g.graph.get('name', '?')!r} has a cycle") from None


def is_synaptic(g: nx.DiGraph, node: str) -> bool:
    return getattr(layer(g, node), "op", None) in SYNAPTIC_OPS


def is_lif(g: nx.DiGraph, node: str) -> bool:
    return isinstance(layer(g, node), LIFLayer)


@dataclass(frozen=True)
class NeuronPlan:
    """Which synaptic layer each LIF population is charged to.

    A population fed by several synaptic layers (a residual block: ``conv2`` and the 1x1
    ``shortcut`` into one ``add``, then a LIF) is one set of neurons: every producer adds its
    currents into the same membranes (its accumulations are its own), and the population's
    updates, membrane storage and output spikes are charged once, to its *primary* producer:
    the nearest one (fewest pass-through nodes between), ties broken by the most MACs per step,
    then the topologically latest. The others *share* it. A synaptic layer reaching no LIF is a
    readout: its sums leave the network.
    """

    primary: dict[str, list[str]]
    """synaptic layer -> the LIF populations charged to it."""
    shared: dict[str, list[str]]
    """synaptic layer -> LIF populations it feeds that are charged to another producer."""
    producers: dict[str, list[str]]
    """LIF -> its synaptic producers, primary first (empty: fed by no synaptic layer)."""


def _producers_by_hops(g: nx.DiGraph, lif: str) -> list[tuple[str, int]]:
    """Synaptic layers whose outputs reach ``lif`` through pass-through nodes only, with the
    number of pass-through nodes in between (breadth-first: the fewest)."""
    seen = {lif}
    todo = deque((m, 0) for m in g.predecessors(lif))
    out: list[tuple[str, int]] = []
    while todo:
        n, hops = todo.popleft()
        if n in seen:
            continue
        seen.add(n)
        if is_synaptic(g, n):
            out.append((n, hops))
        elif not is_lif(g, n):
            todo.extend((m, hops + 1) for m in g.predecessors(n))
    return out


def neuron_plan(g: nx.DiGraph, order: Optional[list[str]] = None) -> NeuronPlan:
    """The :class:`NeuronPlan` of ``g``."""
    order = order or topo_order(g)
    rank = {n: i for i, n in enumerate(order)}
    primary: dict[str, list[str]] = {}
    shared: dict[str, list[str]] = {}
    producers: dict[str, list[str]] = {}
    for n in order:
        if not is_lif(g, n):
            continue
        prods = sorted(_producers_by_hops(g, n), key=lambda p: (
            p[1], -int(layer(g, p[0]).macs_per_step), -rank[p[0]]))
        producers[n] = [p for p, _ in prods]
        for i, (p, _) in enumerate(prods):
            (primary if i == 0 else shared).setdefault(p, []).append(n)
    return NeuronPlan(primary, shared, producers)


def post_pool_hw(g: nx.DiGraph, node: str) -> tuple[int, int]:
    """Spatial size of a conv layer's output after the first pooling that follows it along a
    chain of single-input nodes (LIF, flatten, pooling; a merge such as a residual add ends the
    chain, as does any synaptic layer); the conv output if there is none."""
    nxt = deque(g.successors(node))
    seen = {node}
    while nxt:
        n = nxt.popleft()
        if n in seen or g.in_degree(n) != 1 or is_synaptic(g, n):
            continue
        seen.add(n)
        lay = layer(g, n)
        if isinstance(lay, PoolLayer):
            return int(lay.out_shape[1]), int(lay.out_shape[2])
        nxt.extend(g.successors(n))
    out = layer(g, node).out_shape
    return int(out[1]), int(out[2])
