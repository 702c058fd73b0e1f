"""Beyond the suite: real timm networks exported both ways, planned by effplan, against PyTorch's own figures.

For each network (random weights, biases and BN means drawn nonzero as training leaves them, batch 2): PyTorch's
parameter count and the bytes autograd saves in one training step (fp32, saved_tensors_hooks, each storage once,
weights left out), then three exports (TorchScript train mode, TorchScript eval, dynamo eval) and, for each file:
effplan's params, its stage groups, its training activations over autograd's (eval files also with --unfold-bn),
its training step and inference latency (eager, a100-80gb, batch 8: eval files with --unfold-bn), whether training
outputs say BN looks folded, and whether train/memory/fit run. Needs timm and onnxscript beside torch (a scratch
environment); prints one table, writes nothing under the repository.

    PYTHONPATH=<timm, onnxscript> .venv/bin/python scripts/check_timm_exports.py [--keep DIR] [names...]

--keep DIR: export into DIR and reuse a file already there (to compare effplan versions on the same files).
"""
from __future__ import annotations

import sys
import tempfile
import warnings
from pathlib import Path

NETWORKS = {  # name: input side
    "resnet18": 128, "regnety_002": 128, "mobilenetv3_small_050": 128, "efficientnet_b0": 128,
    "tf_efficientnet_lite0": 128, "convnext_atto": 128, "vit_tiny_patch16_224": 224, "deit_tiny_patch16_224": 224,
    "levit_128s": 224, "swin_tiny_patch4_window7_224": 224, "mobilevit_xxs": 128, "efficientformer_l1": 224,
}


def saved_bytes(model, x) -> int:
    import torch

    weights = {t.untyped_storage().data_ptr() for t in [*model.parameters(), *model.buffers()]}
    storages = {}

    def pack(t):
        if t.untyped_storage().data_ptr() not in weights:
            storages[t.untyped_storage().data_ptr()] = t.untyped_storage().nbytes()
        return t

    model.train()
    with torch.autograd.graph.saved_tensors_hooks(pack, lambda t: t):
        model(x).sum().backward()
    return sum(storages.values())


def main(names, keep: str | None = None) -> None:
    import timm
    import torch

    import effplan
    from effplan.onnx.model import Imported
    from effplan.design.blocks import build
    from effplan.plan.hardware import load_device
    from effplan.plan.memory import training_memory
    from effplan.plan.roofline import roofline
    from effplan.plan.training import training_step

    warnings.filterwarnings("ignore")
    folder = Path(keep) if keep else Path(tempfile.mkdtemp())
    folder.mkdir(parents=True, exist_ok=True)
    device = load_device("a100-80gb")
    print("network | export | params effplan/PyTorch | stage groups | saved effplan/autograd (--unfold-bn) "
          "| step ms | forward ms | BN note | runs")
    for name in names:
        side = NETWORKS.get(name, 224)
        torch.manual_seed(0)
        model = timm.create_model(name, pretrained=False, num_classes=10)
        with torch.no_grad():  # biases as training leaves them: timm initialises them to zero, and the dynamo
            for key, value in model.state_dict().items():  # exporter drops a bias of zeros (a trained one has none)
                if key.endswith(("bias", "running_mean")) and value.is_floating_point():
                    value.normal_(0, 0.01)
        x = torch.randn(2, 3, side, side)
        params = sum(p.numel() for p in model.parameters())
        saved = saved_bytes(model, x)
        for export in ("ts_train", "ts_eval", "dynamo"):
            path = folder / f"{name}_{export}.onnx"
            try:
                model.train() if export == "ts_train" else model.eval()
                options = dict(training=torch.onnx.TrainingMode.TRAINING, do_constant_folding=False) \
                    if export == "ts_train" else {}
                if path.exists():
                    pass  # kept from an earlier run (--keep)
                elif export == "dynamo":
                    torch.onnx.export(model, (x,), str(path), dynamo=True, input_names=["x"],
                                      dynamic_shapes={"x": {0: torch.export.Dim("batch")}}, verbose=False)
                else:
                    torch.onnx.export(model, (x,), str(path), dynamo=False, opset_version=17, input_names=["x"],
                                      dynamic_axes={"x": {0: "batch"}}, **options)
            except Exception as exc:  # an exporter's own failure is not effplan's
                print(f"{name} | {export} | export failed: {str(exc).splitlines()[0][:80]}")
                continue
            try:
                graph = Imported(str(path)).graph(2)
                unfolded = Imported(str(path), unfold_bn=True).graph(2)
                stages = {graph.nodes[n]["stage"] for n in graph.nodes}
                ours = training_memory(graph, "fp32", "sgd").activation_bytes / saved
                restored = training_memory(unfolded, "fp32", "sgd").activation_bytes / saved
                at8 = build(Imported(str(path), unfold_bn=export != "ts_train"), 8)
                step = training_step(at8, device, runtime="eager").time_s * 1e3
                forward = roofline(at8, device, batch=8, runtime="eager").latency_s * 1e3
                p = effplan.analyze(str(path), 2).totals.params
                noted = "noted" if Imported(str(path)).training_note() else "-"
                effplan.train(str(path), "a100-80gb", batch=2)
                effplan.fit(str(path), "16GiB", train=True)
                runs = "train, memory, fit"
            except Exception as exc:
                print(f"{name} | {export} | effplan failed: {str(exc).splitlines()[0][:100]}")
                continue
            print(f"{name} | {export} | {p:,}/{params:,} | {len(stages)} | {ours:.3f} ({restored:.3f}) | {step:.3f} "
                  f"| {forward:.3f} | {noted} | {runs}")
            sys.stdout.flush()


if __name__ == "__main__":
    args = sys.argv[1:]
    kept = args.pop(args.index("--keep") + 1) if "--keep" in args else None
    args = [a for a in args if a != "--keep"]
    main(args or list(NETWORKS), kept)
