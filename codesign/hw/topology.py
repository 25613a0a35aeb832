"""Graph walks the cost model needs (which LIF a layer feeds, analog inputs, pooled sizes).

The graph is the ``networkx.DiGraph`` of :mod:`codesign.graph.schema`. "Pass-through" nodes are
those that neither weigh (conv, linear) nor fire (LIF): pooling, flatten, add, output.
"""

from __future__ import annotations

from collections import deque
from typing import Optional

import networkx as nx

from codesign.errors import CodesignError
from codesign.graph.schema import SYNAPTIC_OPS, InputLayer, LIFLayer, PoolLayer


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


def _walk(g: nx.DiGraph, start: str, forward: bool):
    """Breadth-first over pass-through nodes from ``start``; yields every node reached
    (synaptic and LIF nodes are yielded but not walked through)."""
    nxt = g.successors if forward else g.predecessors
    seen = {start}
    todo = deque(nxt(start))
    while todo:
        n = todo.popleft()
        if n in seen:
            continue
        seen.add(n)
        yield n
        if not (is_synaptic(g, n) or is_lif(g, n)):
            todo.extend(nxt(n))


def lif_owners(g: nx.DiGraph, order: Optional[list[str]] = None) -> dict[str, Optional[str]]:
    """LIF node -> the synaptic layer whose output it integrates (the topologically last of its
    nearest synaptic producers, reached through pass-through nodes), or ``None``."""
    order = order or topo_order(g)
    rank = {n: i for i, n in enumerate(order)}
    owners: dict[str, Optional[str]] = {}
    for n in order:
        if is_lif(g, n):
            prods = [m for m in _walk(g, n, forward=False) if is_synaptic(g, m)]
            owners[n] = max(prods, key=rank.__getitem__) if prods else None
    return owners


def fed_by_input(g: nx.DiGraph, node: str) -> bool:
    """True when ``node`` reads the network input directly (through pass-through nodes only)."""
    return any(isinstance(layer(g, m), InputLayer) for m in _walk(g, node, forward=False))


def analog_input(g: nx.DiGraph, node: str) -> bool:
    """True when the layer's input is analog: the network input under ``direct`` encoding."""
    return g.graph.get("encoding", "direct") == "direct" and fed_by_input(g, node)


def input_levels(g: nx.DiGraph, node: str) -> int:
    """Non-zero levels of a layer's spike input: the product of the window areas of the
    average (or sum) poolings between it and the LIF nodes that fire into it (an average of
    ``k*k`` spikes takes ``k*k + 1`` values); 1 for plain binary spikes."""
    best = 1
    stack = [(m, 1) for m in g.predecessors(node)]
    seen: set[str] = set()
    while stack:
        n, levels = stack.pop()
        if n in seen:
            continue
        seen.add(n)
        lay = layer(g, n)
        if is_synaptic(g, n) or is_lif(g, n) or isinstance(lay, InputLayer):
            best = max(best, levels)
            continue
        if isinstance(lay, PoolLayer) and lay.kind in ("avg", "sum"):
            levels *= int(lay.kernel_size[0]) * int(lay.kernel_size[1])
        stack.extend((m, levels) for m in g.predecessors(n))
    return best


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
