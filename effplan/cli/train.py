"""Training time: a step's forward, backward, optimizer and communication, and a whole run's hours."""
from __future__ import annotations

import sys

import click

from ..base.errors import EffplanError
from ..gate.budget import MAX_BATCH
from .options import FORMAT, OPTIMIZER, PRECISION, OUTPUT, design_options, describe_design, emit, one_design, \
    view_options

RUNTIMES = click.Choice(["eager", "compiled", "xla", "fused", "onnxruntime-cpu"])

STAGE_COLUMNS = [
    ("res", "resolution", str),
    ("epochs", "epochs", str),
    ("batch/dev", "batch", str),
    ("global", "global_batch", str),
    ("fits (largest)", "fits_text", str),
    ("fwd ms", "forward_s", lambda v: f"{v * 1e3:.2f}"),
    ("bwd ms", "backward_s", lambda v: f"{v * 1e3:.2f}"),
    ("recompute ms", "recompute_s", lambda v: f"{v * 1e3:.2f}"),
    ("optim ms", "optimizer_s", lambda v: f"{v * 1e3:.2f}"),
    ("comm ms", "communication_s", lambda v: f"{v * 1e3:.2f}"),
    ("step ms", "step_s", lambda v: f"{v * 1e3:.2f}"),
    ("img/s/dev", "images_per_s_per_device", lambda v: f"{v:,.0f}"),
    ("img/s", "images_per_s", lambda v: f"{v:,.0f}"),
    ("epoch min", "epoch_s", lambda v: f"{v / 60:.1f}"),
    ("hours", "hours", lambda v: f"{v:.2f}"),
    ("share", "share", lambda v: f"{v:.0%}"),
    ("mem/dev GiB", "memory_bytes", lambda v: f"{v / 2**30:.2f}"),
]

# hidden in this order to fit the terminal: the step's parts, then how it is shared out
TRAIN_OPTIONAL = ("recompute_s", "global_batch", "epoch_s", "images_per_s_per_device", "optimizer_s", "share",
                  "communication_s", "epochs", "memory_bytes", "backward_s", "forward_s")


def _stage_row(stage, total_s: float) -> dict:
    s = stage.step
    return {"resolution": stage.resolution, "epochs": stage.epochs, "batch": stage.batch,
            "global_batch": stage.global_batch, "largest_batch": stage.largest_batch,
            "fits": stage.batch <= stage.largest_batch, "steps_per_epoch": stage.steps_per_epoch,
            "forward_s": s.forward_s, "backward_s": s.backward_s, "recompute_s": s.recompute_s,
            "optimizer_s": s.optimizer_s, "allreduce_s": s.allreduce_s, "communication_s": s.communication_s,
            "step_s": s.time_s, "images_per_s_per_device": s.images_per_s,
            "images_per_s": s.images_per_s * s.devices, "epoch_s": stage.steps_per_epoch * s.time_s,
            "seconds": stage.seconds, "hours": stage.seconds / 3600,
            "share": stage.seconds / total_s if total_s else 0.0, "memory_bytes": s.memory_bytes,
            "kernels": {"forward": len(s.forward), "backward": len(s.backward), "recompute": len(s.recompute)}}


def conventions(step, run) -> dict:
    from ..plan.runtime import load_runtime
    from ..plan.training import OVERLAP
    rt = load_runtime(step.runtime)
    half = {"mixed": f"{step.dtype} arithmetic and activations, fp32 master weights, gradients and optimizer state"}
    return {
        "runtime": step.runtime,
        "forward": f"the kernels roofline --runtime {rt.name} runs ({rt.description}), plus a "
                   "BatchNormalization statistics pass per BN",
        "backward": ("one kernel per op" if not (rt.fusion and rt.pointwise_chains) else
                     "one kernel per op, chains of elementwise gradients fused into one kernel (as the runtime "
                     "fuses the forward; conv gradients unfused)")
                    + ": a conv's input and weight gradients each cost the "
                    "forward's MACs on its unit (depthwise on the vector unit; matrix work padded to the tile "
                    "where the runtime pads); other ops memory-bound over their "
                    "saved tensors, output gradient and input gradients; fan-out gradients summed",
        "optimizer": "one memory-bound pass over params and optimizer state (foreach/fused kernels)",
        "precision": half.get(step.precision, f"{step.precision} throughout"),
        "communication": ("ring all-reduce of the gradients, 2(N-1)/N x gradient bytes over the slowest link; "
                          + OVERLAP[step.runtime][1]) if run.devices > 1 else "one device: none",
        "batch": "per device; global = per device x devices; steps per epoch = ceil(dataset / global batch)",
        "fits": "largest per-device batch whose training step fits the device's memory less a 10% reserve "
                "(effplan fit --train)",
        "estimate": "roofline estimates (max of compute and memory time plus launch overhead per kernel), "
                    "not measurements; input pipeline, loss and evaluation left out",
    }


@click.command()
@click.argument("model")
@design_options(single=True)
@click.option("--device", required=True, help="A catalog device (effplan devices) or a device file.")
@click.option("--devices", type=click.IntRange(1, 1 << 20), default=1, show_default=True,
              help="Data-parallel devices (all in one host unless --hosts).")
@click.option("--hosts", type=click.IntRange(1, 1 << 16), default=1, show_default=True,
              help="Hosts the devices are spread over (needs --network-gbs when more than 1).")
@click.option("--network-gbs", type=click.FloatRange(min=0, min_open=True), default=None,
              help="Inter-host bandwidth per device, one way, GB/s (e.g. 25 for 200 Gb/s InfiniBand).")
@click.option("--link-gbs", type=click.FloatRange(min=0, min_open=True), default=None,
              help="Override the device-to-device link, one way, GB/s.")
@click.option("--batch", type=click.IntRange(1, MAX_BATCH), default=None,
              help="Per-device batch (default: the largest that fits each stage).")
@click.option("--global-batch", type=click.IntRange(1, MAX_BATCH), default=None, help="Batch over all devices.")
@click.option("--epochs", type=click.IntRange(1, 1 << 20), default=1, show_default=True)
@click.option("--dataset-size", "--images", "dataset_size", type=click.IntRange(1, 1 << 40), default=1281167,
              show_default=True, help="Training images (ImageNet-1k: 1,281,167).")
@click.option("--runtime", type=RUNTIMES, default=None,
              help="Training runtime: eager (PyTorch, default on GPUs and CPUs), compiled (torch.compile) or xla "
                   "(default on TPUs).")
@PRECISION
@OPTIMIZER
@click.option("--checkpoint", type=click.Choice(["none", "blocks"]), default="none", show_default=True,
              help="Recompute each block in backward.")
@click.option("--progressive", default=None, metavar="MIN:MAX:STAGES",
              help="Progressive learning: image side rising from MIN to MAX over STAGES stages (128:300:4).")
@click.option("--price-per-hour", type=click.FloatRange(min=0), default=None, help="Price of one device-hour.")
@FORMAT
@view_options
@OUTPUT
def train(model, query, device, devices, hosts, network_gbs, link_gbs, batch, global_batch, epochs, dataset_size,
          runtime, precision, optimizer, checkpoint, progressive, price_per_hour, fmt, view, output):
    """Training step time and the hours (and cost) of a whole run, per device and in total.

    \b
    effplan train efficientnet-b0 --device a100-80gb --devices 8 --batch 256 --epochs 350
    effplan train efficientnetv2-s --device tpu-v3 --devices 16 --global-batch 4096 --epochs 350 \\
        --progressive 128:300:4 --optimizer adam
    """
    from ..plan.hardware import load_device
    from ..plan.training import Link, device_link, parse_progressive, training_run

    found = load_device(device)
    design = one_design(model, query)
    link = None
    if link_gbs is not None:
        link = Link(link_gbs * 1e9, "given", "--link-gbs")
    if hosts > 1:
        if network_gbs is None:
            raise EffplanError("--hosts > 1 needs --network-gbs (the inter-host bandwidth per device, one way)")
        if devices % hosts:
            raise EffplanError(f"--devices {devices} does not split evenly over {hosts} hosts")
        inside = link or device_link(found)
        network = Link(network_gbs * 1e9, "network", "--network-gbs")
        link = network if inside is None or network.bytes_per_s <= inside.bytes_per_s else inside
    stages = parse_progressive(progressive) if progressive else None
    run = training_run(design, found, batch=batch, global_batch=global_batch, devices=devices, epochs=epochs,
                       dataset_size=dataset_size, progressive=stages, price_per_hour=price_per_hour, link=link,
                       runtime=runtime, precision=precision, optimizer=optimizer, checkpoint=checkpoint)
    first = run.stages[0].step
    rows = [_stage_row(s, run.seconds) for s in run.stages]
    report = {**describe_design(design), "device": found.name, "devices": devices, "hosts": hosts,
              "runtime": first.runtime, "precision": precision, "dtype": first.dtype, "optimizer": optimizer,
              "checkpoint": checkpoint, "epochs": epochs, "dataset_size": dataset_size,
              "progressive": None if stages is None else {"min": stages[0], "max": stages[1], "stages": stages[2]},
              "params": first.params, "gradient_bytes": first.gradient_bytes,
              "link": None if first.link is None else {"kind": first.link.kind, "bytes_per_s": first.link.bytes_per_s,
                                                        "source": first.link.source},
              "conventions": conventions(first, run), "stages": rows,
              "totals": {"seconds": run.seconds, "hours": run.hours, "device_hours": run.hours * devices,
                         "price_per_device_hour": price_per_hour, "cost": run.cost}}
    unfit = [r for r in rows if not r["fits"]]
    for r in unfit:
        print(f"effplan: warning: batch {r['batch']} per device does not fit {found.name} at {r['resolution']} px "
              f"(largest {r['largest_batch']})", file=sys.stderr)
    emit(render_train(report, fmt, view), output)


def render_train(report: dict, fmt: str, view=None) -> str:
    from ..render.report import render_rows, to_json

    if fmt == "json":
        return to_json(report)
    if fmt == "csv":
        keys = [k for k, v in report["stages"][0].items() if not isinstance(v, dict)]
        return render_rows(report["stages"], [(k, k, str) for k in keys], fmt)
    rows = [{**r, "fits_text": f"{'yes' if r['fits'] else 'NO'} ({r['largest_batch']})"} for r in report["stages"]]
    c, t = report["conventions"], report["totals"]
    link = report["link"]
    lines = [f"# effplan train | {report['model']} at {report['resolution']}px on {report['devices']} x "
             f"{report['device']}, runtime {report['runtime']}, {report['precision']} ({c['precision']}), "
             f"{report['optimizer']}, checkpoint {report['checkpoint']}",
             f"# forward: {c['forward']}", f"# backward: {c['backward']}", f"# optimizer: {c['optimizer']}",
             f"# communication: {c['communication']}" + (
                 f"; link {link['kind']} {link['bytes_per_s'] / 1e9:g} GB/s one way ({link['source']})" if link else ""),
             f"# batch: {c['batch']}; fits: {c['fits']}", f"# {c['estimate']}",
             f"{report['epochs']} epochs of {report['dataset_size']:,} images: {t['hours']:.2f} h"
             f" ({t['device_hours']:.1f} device-hours)"
             + (f", cost {t['cost']:,.2f}" if t["cost"] is not None else "")]
    return render_rows(rows, STAGE_COLUMNS, fmt, "\n".join(lines), view, TRAIN_OPTIONAL)
