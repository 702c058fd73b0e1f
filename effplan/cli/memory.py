"""Memory: the inference peak and a training step (memory), the largest batch that fits (fit)."""
from __future__ import annotations

import sys

import click

from ..base.errors import EffplanError
from ..gate.budget import MAX_BATCH
from ..plan.memory import DEFAULT_RESERVE, inference_graph
from .options import FORMAT, BATCH, DEVICE_DTYPE, DTYPE, OUTPUT, design_options, designs_from, emit, one_design, train_options, file_checks, view_options


@click.command()
@click.argument("model")
@design_options(single=True)
@train_options
@click.option("--by", type=click.Choice(["layer", "block", "stage"]), default="stage", show_default=True,
              help="Rows per layer (op), block or stage.")
@BATCH
@DTYPE
@FORMAT
@view_options
@OUTPUT
def memory(model, query, train, optimizer, precision, checkpoint, inplace, fold_bn, fuse_se, order, by, batch, dtype,
           fmt, view, output):
    """Inference peak by liveness (and with --train, a training step's memory) of one design."""
    from ..design.blocks import build
    from ..plan.memory import training_memory
    from ..render.report import memory_report, render_memory

    design = one_design(model, query)
    file_checks(design, batch, checkpoint, train=train)
    training = training_memory(build(design, batch), precision, optimizer, checkpoint) if train else None
    report, rows = memory_report(inference_graph(design, batch, fold_bn), design, batch, dtype, inplace=inplace,
                                 fold_bn=fold_bn, fuse_se=fuse_se, order=order, training=training, by=by)
    emit(render_memory(report, rows, fmt, view), output)


@click.command()
@click.argument("models", nargs=-1, required=True)
@design_options
@train_options
@click.option("--device", "devices", multiple=True, metavar="NAME|FILE",
              help="A catalog device or a device file: its own memory (repeat for several), e.g. a100-80gb.")
@click.option("--memory", "memory_text", default=None, metavar="SIZE",
              help="Memory to fit in: 16GiB (= 16g, 2^30 bytes each) or 16GB (10^9 bytes each).")
@click.option("--reserve", default=DEFAULT_RESERVE, show_default=True, metavar="SHARE|SIZE",
              help="Kept back for the runtime's context, workspace and fragmentation: 10% or 1.5GiB.")
@click.option("--batch", "asked", type=click.IntRange(1, MAX_BATCH), default=None,
              help="Does this batch fit? Yes or no with the margin; exit 1 when it does not.")
@DEVICE_DTYPE
@FORMAT
@view_options
@OUTPUT
def fit(models, query, train, optimizer, precision, checkpoint, inplace, fold_bn, fuse_se, order, devices, memory_text,
        reserve, asked, dtype, fmt, view, output):
    """The largest batch that fits each device, or an amount of memory (inference, or --train); with
    --batch B, whether B fits (exit 0 yes, 1 no). Exit 1 also when not even batch 1 fits.

    \b
    effplan fit efficientnet-b7 --device a100-80gb --device t4 --train
    effplan fit efficientnetv2-s --memory 16GiB --train --resolution 128,192,256,300,384
    effplan fit efficientnet-b3 --memory 16g --train --batch 64
    """
    from ..base.units import cost_dtype, size_note
    from ..plan.memory import largest_batch, memory_budget, memory_by_batch
    from ..render.report import fit_report

    if bool(devices) == (memory_text is not None):
        raise EffplanError("give one of --device NAME (repeatable) or --memory SIZE")
    pairs = designs_from(models, **query)
    for design, _ in pairs:
        file_checks(design, 1, checkpoint if train else "none", fit=True, train=train)
    notes = []
    if devices:
        from ..plan.hardware import load_device
        targets = [(found.name, found.memory_bytes, found) for found in map(load_device, dict.fromkeys(devices))]
    else:
        targets = [(memory_text, memory_text, None)]
        notes = [note for note in [size_note(memory_text, catalog_memories())] if note]
    results = []
    for where, given, found in targets:
        capacity, budget = memory_budget(given, reserve)
        at = cost_dtype(dtype, found)
        for design, _ in pairs:
            memory_at = memory_by_batch(design, train=train, dtype=at, precision=precision, optimizer=optimizer,
                                        checkpoint=checkpoint, inplace=inplace, fold_bn=fold_bn, fuse_se=fuse_se,
                                        order=order)
            results.append({"design": design, "device": where, "capacity": capacity, "budget": budget,
                            "dtype": None if train else at, "fit": largest_batch(memory_at, budget),
                            "at": memory_at(asked) if asked else None})
    mode = (f"training: {precision} precision, {optimizer}, checkpoint {checkpoint}" if train
            else "inference: peak activations + weights at the dtype shown"
                 + "".join(f", {flag}" for flag, on in (("in-place", inplace), ("BN folded", fold_bn),
                                                          ("SE fused", fuse_se), ("memory-aware order", order == "aware"))
                           if on))
    emit(fit_report(results, reserve, mode, fmt, asked, view, notes), output)
    if any(r["fit"].batch == 0 or r["at"] is not None and r["at"] > r["budget"] for r in results):
        sys.exit(1)


def catalog_memories() -> dict[str, int]:
    """Each catalog device's memory, by name (for the note on a decimal size near one)."""
    from ..plan.hardware import builtin_device_paths, load_device

    return {name: load_device(name).memory_bytes for name in builtin_device_paths()}
