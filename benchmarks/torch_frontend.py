"""From PyTorch, timed and checked on timm networks the tests do not name.

Time (whole process, median of interleaved runs, the first round untimed):
  effplan   `effplan layers timm:NAME --format json`
  export    python: import torch and timm, build NAME on the meta device, torch.export.export it (what
            effplan's front-end does before its own work: the floor under it)
  fvcore    python: import torch, timm and fvcore, build NAME with weights on the CPU, FlopCountAnalysis.total()
            (only where fvcore imports)
In this process, the two phases of effplan's front-end: torch.export of the meta module, then effplan's
import of the program into its graph (importer.to_graph), each timed once.
Checked, in this process:
  params    effplan's params against sum(p.numel()) of the module (exact)
  macs      effplan's Conv, Gemm, MatMul and Einsum MACs against fvcore's conv, linear and matrix-product
            count (fvcore counts a multiply-add as one; it skips scaled_dot_product_attention, so effplan's
            Attention MACs are left out here)
  saved     effplan's training activations (memory --train, fp32) against the distinct storages autograd
            saves in a training forward on the CPU (torch.autograd.graph.saved_tensors_hooks), at batch 1
  stages    the stage groups recovered from the module paths

Run it with the python of an environment holding effplan, torch, timm (and fvcore, optionally):
    python benchmarks/torch_frontend.py [--runs 3] [--models resnet18,efficientnet_b0]
"""
import argparse
import json
import statistics
import subprocess
import sys
import time

import _effplan  # benchmarks/_effplan.py

MODELS = ["resnet18", "efficientnet_b0", "mobilenetv3_large_100", "convnext_femto", "regnety_002",
          "vit_tiny_patch16_224"]

EXPORT = """
import sys, torch, timm
with torch.device("meta"):
    m = timm.create_model(sys.argv[1], pretrained=False)
x = torch.empty((2, *m.pretrained_cfg["input_size"]), device="meta")
torch.export.export(m.eval(), (x,), dynamic_shapes=({0: torch.export.Dim.AUTO},), strict=False)
"""

FVCORE = """
import sys, torch, timm
from fvcore.nn import FlopCountAnalysis
m = timm.create_model(sys.argv[1], pretrained=False).eval()
a = FlopCountAnalysis(m, torch.zeros((1, *m.pretrained_cfg["input_size"])))
a.unsupported_ops_warnings(False); a.uncalled_modules_warnings(False)
a.total()
"""


def wall(cmd: list[str]) -> float:
    start = time.perf_counter()
    subprocess.run(cmd, check=True, capture_output=True)
    return time.perf_counter() - start


def timings(name: str, runs: int, with_fvcore: bool) -> dict:
    commands = {"effplan": [_effplan.command(), "layers", f"timm:{name}", "--format", "json"],
                "export": [sys.executable, "-c", EXPORT, name]}
    if with_fvcore:
        commands["fvcore"] = [sys.executable, "-c", FVCORE, name]
    times = {key: [] for key in commands}
    for round_ in range(runs + 1):
        for key, cmd in commands.items():
            seconds = wall(cmd)
            if round_:
                times[key].append(seconds)
    return {key: statistics.median(v) for key, v in times.items()}


def autograd_saved_bytes(module, x) -> int:
    import torch

    weights = {t.untyped_storage().data_ptr() for t in (*module.parameters(), *module.buffers())}
    saved = {}

    def pack(t):
        if t.untyped_storage().data_ptr() not in weights:
            saved[t.untyped_storage().data_ptr()] = t.untyped_storage().nbytes()
        return t

    module.train()
    with torch.autograd.graph.saved_tensors_hooks(pack, lambda t: t):
        module(x)
    return sum(saved.values())


def checks(name: str, with_fvcore: bool) -> dict:
    import torch
    import timm

    import effplan
    from effplan.graph.ops import graph_weights, node_cost
    from effplan.plan.memory import training_memory

    from effplan.torch.importer import to_graph
    from effplan.torch.model import export

    with torch.device("meta"):  # in this process: torch.export's time, and effplan's import of its program
        meta = timm.create_model(name, pretrained=False)
    start = time.perf_counter()
    program = export(meta, meta.pretrained_cfg["input_size"], False, None, name)
    exported = time.perf_counter()
    to_graph(program, name, 1)
    phases = {"in_process_export_s": round(exported - start, 3),
              "in_process_import_s": round(time.perf_counter() - exported, 3)}
    torch.manual_seed(0)
    module = timm.create_model(name, pretrained=False)
    shape = module.pretrained_cfg["input_size"]
    eval_graph = effplan.from_torch(module, shape, train=False).graph(1)
    train_graph = effplan.from_torch(module, shape, train=True).graph(1)
    dense = sum(node_cost(eval_graph, n, 4).macs for n in eval_graph.nodes
                if eval_graph.nodes[n]["op"] in ("Conv", "Gemm", "MatMul", "Einsum"))
    out = {"params": graph_weights(eval_graph)[0], "torch_params": sum(p.numel() for p in module.parameters()),
           "macs": dense, "stages": len({eval_graph.nodes[n]["stage"] for n in eval_graph.nodes
                                         if isinstance(eval_graph.nodes[n]["stage"], int)}),
           "saved": training_memory(train_graph, precision="fp32").activation_bytes,
           "autograd_saved": autograd_saved_bytes(module, torch.randn(1, *shape)), **phases}
    if with_fvcore:
        from fvcore.nn import FlopCountAnalysis

        analysis = FlopCountAnalysis(module.eval(), torch.zeros(1, *shape))
        analysis.unsupported_ops_warnings(False)
        analysis.uncalled_modules_warnings(False)
        counted = analysis.by_operator()
        out["fvcore_macs"] = sum(v for k, v in counted.items()
                                 if k in ("conv", "linear", "addmm", "matmul", "bmm", "mm", "einsum"))
    return out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--runs", type=int, default=3)
    parser.add_argument("--models", default=",".join(MODELS))
    parser.add_argument("--no-timing", action="store_true")
    args = parser.parse_args()
    try:
        import fvcore.nn  # noqa: F401
        with_fvcore = True
    except ImportError:
        with_fvcore = False
    rows = []
    for name in args.models.split(","):
        row = {"model": name, **checks(name, with_fvcore)}
        if not args.no_timing:
            row.update({f"{k}_s": round(v, 2) for k, v in timings(name, args.runs, with_fvcore).items()})
            row["effplan_over_export"] = round(row["effplan_s"] / row["export_s"], 2)
        row["saved_ratio"] = round(row["saved"] / row["autograd_saved"], 4)
        if "fvcore_macs" in row:
            row["macs_ratio"] = round(row["macs"] / row["fvcore_macs"], 5)
        rows.append(row)
        print(json.dumps(row), flush=True)


if __name__ == "__main__":
    main()
