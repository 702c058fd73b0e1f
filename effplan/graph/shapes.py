"""Shapes: the error a shape that cannot be raises, and numpy's broadcasting. Each op's shape rule is
its op table entry's `infer` (infer.py, infer_layout.py), which the builders and import both call.
"""
from __future__ import annotations

from ..base.errors import EffplanError

Shape = tuple[int, ...]


class ShapeError(EffplanError):
    pass


def broadcast(shapes: list[Shape]) -> Shape:
    if all(s == shapes[0] for s in shapes):
        return shapes[0]
    if len(shapes) == 2 and len(shapes[0]) == len(shapes[1]) and all(
            a == b or b == 1 for a, b in zip(*shapes)):
        return shapes[0]  # the common case: a per-channel gate scaling a feature map
    rank = max(len(s) for s in shapes)
    padded = [(1,) * (rank - len(s)) + tuple(s) for s in shapes]
    out = []
    for dims in zip(*padded):
        sizes = {d for d in dims if d != 1}
        if len(sizes) > 1:
            raise ShapeError(f"shapes {shapes} do not broadcast")
        out.append(sizes.pop() if sizes else 1)
    return tuple(out)
