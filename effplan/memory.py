"""Inference activation memory: tensors live from their producer until their last consumer."""
from __future__ import annotations

import math
from dataclasses import dataclass


@dataclass(frozen=True)
class Peak:
    bytes: int
    node: str  # the op running when the peak occurs
    live: tuple[str, ...]  # the tensors live then


def peak_activation(graph, dtype_bytes: int) -> Peak:
    """Largest total of live tensors while the nodes run in stored (topological) order.

    While a node runs, its inputs and its output are live together, and so is every tensor
    still needed later; the graph input counts, weights do not. No tensor is freed or
    overwritten in place before its last consumer has run.
    """
    order = list(graph.nodes)
    tensors = graph.graph["tensors"]
    last_use = {t: -1 for t in graph.graph["inputs"]}
    for i, name in enumerate(order):
        for t in graph.nodes[name]["inputs"]:
            last_use[t] = i
    for t in graph.graph["outputs"]:
        last_use[t] = len(order)
    size = {t: math.prod(s) * dtype_bytes for t, s in tensors.items()}

    live = {t: size[t] for t in graph.graph["inputs"]}
    current = sum(live.values())
    best = Peak(current, "", tuple(live))
    for i, name in enumerate(order):
        for t in graph.nodes[name]["outputs"]:
            live[t] = size[t]
            current += size[t]
        if current > best.bytes:
            best = Peak(current, name, tuple(live))
        for t in [t for t in live if last_use.get(t, i) <= i]:
            current -= live.pop(t)
    return best
