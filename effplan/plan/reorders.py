"""The layout reorders onnxruntime's CPU runtime inserts between kernels (NCHW <-> NCHWc), and their kernels:
roofline.kernels adds them where the runtime's [layout] reorders is "nchwc"."""
from __future__ import annotations

from ..graph.ops import ACTIVATION, ANCHOR, NORM, OPS, POINTWISE, RESIDUAL

ELEMENTWISE = (NORM, ACTIVATION, RESIDUAL, POINTWISE)


def fusion_class(op: str) -> str | None:
    return OPS[op].fusion if op in OPS else None


POOLS = ("GlobalAveragePool", "GlobalMaxPool", "MaxPool", "AveragePool")


def nchwc_reorders(graph, groups: list[list[str]], block: int) -> list[tuple[int, str, str]]:
    """The layout reorders onnxruntime's CPU NCHWc transformer inserts (onnxruntime/core/optimizer/
    nchwc_transformer.cc, MLAS block `block`: 8 on AVX2, 16 on AVX-512), as (index of the kernel it runs
    before, tensor, "ReorderInput" to NCHWc or "ReorderOutput" to NCHW); len(groups) for a graph output.
    Per kernel, by its main op: a conv runs blocked when it can (group 1 with fewer input channels than
    a block reads NCHW directly and writes NCHWc; depthwise needs channels a multiple of the block;
    other input channels must be a multiple unless the input is blocked already); a pool runs blocked
    on a multiple of the block; an elementwise op follows its input's layout unless it broadcasts (the
    SE scale Mul runs in NCHW); everything else (Gemm, Flatten's reader, Concat) in NCHW. A tensor
    read in the other layout is reordered once. Observed against onnxruntime 1.32's optimized graphs:
    tests/test_calibration.py counts them in B0 and ResNet-50."""
    nodes, tensors = graph.nodes, graph.graph["tensors"]
    grouped = {n for group in groups for n in group}
    view_of = {nodes[n]["outputs"][0]: nodes[n]["inputs"][0] for n in nodes if n not in grouped and nodes[n]["inputs"]}

    def source(t):  # a view (Flatten, Reshape) reads its input's memory
        while t in view_of:
            t = view_of[t]
        return t
    layout = {t: "nchw" for t in graph.graph["inputs"]}
    done: set = set()
    found = []
    for index, group in enumerate(groups):
        main = next((n for n in group if fusion_class(nodes[n]["op"]) == ANCHOR), group[0])
        node, produced = nodes[main], {t for n in group for t in nodes[n]["outputs"]}
        reads = [source(t) for n in group for t in nodes[n]["inputs"] if t in tensors and t not in produced]
        first = reads[0] if reads else None
        need = out = "nchw"
        if node["op"] == "Conv":
            weight = next(w.shape for w in node["weights"] if w.role == "W")
            groups_, cout = node["attrs"].get("group", 1), weight[0]
            cin = weight[1] * groups_
            if groups_ == 1 and cin < block:
                out = "nchwc"
            elif (groups_ == 1 and (cin % block == 0 or layout.get(first) == "nchwc")) or (
                    groups_ == cin == cout and cout % block == 0):
                need = out = "nchwc"
        elif node["op"] in POOLS and first is not None and tensors[first][1] % block == 0:
            need = out = "nchwc"
        elif (fusion_class(node["op"]) in ELEMENTWISE and first is not None
              and all(tensors[t] == tensors[first] for t in reads)):
            need = out = layout.get(first, "nchw")
        for i, t in enumerate(reads):
            wanted = need if i == 0 or node["op"] != "Conv" else out  # a fused residual comes in as the output does
            if layout.get(t, "nchw") != wanted and (t, wanted) not in done:
                done.add((t, wanted))
                found.append((index, t, "ReorderInput" if wanted == "nchwc" else "ReorderOutput"))
        for t in produced:
            layout[t] = out
    found += [(len(groups), t, "ReorderOutput") for t in graph.graph["outputs"] if layout.get(source(t)) == "nchwc"]
    return found


def with_reorders(records: list, reorders: list, nodes, tensors) -> list:
    """Each layout reorder as a kernel of its own before the kernel that reads it: a memory-bound copy
    (the tensor read, its reordered copy written), which that kernel then reads instead."""
    result, pending = [], sorted(reorders, key=lambda r: r[0])
    for record in [*records, None]:
        while pending and (record is None or pending[0][0] <= record["at"]):
            _, t, kind = pending.pop(0)
            copy = f"{t}#{kind}"
            owner = record or result[-1]
            result.append({"group": [], "node": owner["node"], "main": f"{t}.{kind}", "reads": {t}, "kind": "elementwise",
                           "writes": {copy}, "weights": 0, "macs": 0, "flops": 0, "unit": "vector", "matrix": 0,
                           "vector": 0, "loss": 0.0, "op": kind, "extra": {copy: tensors[t]}, "at": owner["at"]})
            if record is not None and t in record["reads"]:
                record["reads"] = record["reads"] - {t} | {copy}
                record["extra"] = {**record["extra"], copy: tensors[t]}
        if record is not None:
            result.append(record)
    return result
