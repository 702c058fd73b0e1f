"""Memory: the inference peak and a training step (memory), the largest batch that fits (fit)."""
from __future__ import annotations

import sys

import click

from ..base.errors import EffplanError
from ..gate.budget import MAX_BATCH
from ..plan.memory import DEFAULT_RESERVE, inference_graph
from .options import FORMAT, BATCH, DTYPE, OUTPUT, design_options, designs_from, emit, one_design, train_options, file_checks, view_options


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
@click.option("--device", default=None, help="A catalog device (its memory), e.g. a100-80gb.")
@click.option("--memory", "memory_text", default=None, metavar="SIZE", help="Memory to fit in, e.g. 16GiB.")
@click.option("--reserve", default=DEFAULT_RESERVE, show_default=True, metavar="SHARE|SIZE",
              help="Kept back for the runtime's context, workspace and fragmentation: 10% or 1.5GiB.")
@click.option("--batch", "asked", type=click.IntRange(1, MAX_BATCH), default=None,
              help="Does this batch fit? Yes or no with the margin; exit 1 when it does not.")
@DTYPE
@FORMAT
@view_options
@OUTPUT
def fit(models, query, train, optimizer, precision, checkpoint, inplace, fold_bn, fuse_se, order, device, memory_text,
        reserve, asked, dtype, fmt, view, output):
    """The largest batch that fits a device or an amount of memory (inference, or --train); with
    --batch B, whether B fits (exit 0 yes, 1 no). Exit 1 also when not even batch 1 fits.

    \b
    effplan fit efficientnet-b7 --device a100-80gb --train --precision mixed --optimizer adamw
    effplan fit efficientnetv2-s --memory 16GiB --train --resolution 128,192,256,300,384
    effplan fit efficientnet-b3 --memory 16g --train --batch 64
    """
    from ..plan.memory import largest_batch, memory_budget, memory_by_batch
    from ..render.report import fit_report

    if (device is None) == (memory_text is None):
        raise EffplanError("give one of --device NAME or --memory SIZE")
    if device:
        from ..plan.hardware import load_device
        found = load_device(device)
        memory_given, where = found.memory_bytes, found.name
    else:
        memory_given, where = memory_text, memory_text
    capacity, budget = memory_budget(memory_given, reserve)
    results = []
    for design, _ in designs_from(models, **query):
        file_checks(design, 1, checkpoint if train else "none", fit=True, train=train)
        memory_at = memory_by_batch(design, train=train, dtype=dtype, precision=precision, optimizer=optimizer,
                                    checkpoint=checkpoint, inplace=inplace, fold_bn=fold_bn, fuse_se=fuse_se,
                                    order=order)
        results.append((design, largest_batch(memory_at, budget), memory_at(asked) if asked else None))
    mode = (f"training: {precision} precision, {optimizer}, checkpoint {checkpoint}" if train
            else f"inference: {dtype}, peak activations + weights"
                 + "".join(f", {flag}" for flag, on in (("in-place", inplace), ("BN folded", fold_bn),
                                                          ("SE fused", fuse_se), ("memory-aware order", order == "aware"))
                           if on))
    emit(fit_report(results, where, capacity, budget, reserve, mode, fmt, asked, view), output)
    if any(fit.batch == 0 or at is not None and at > budget for _, fit, at in results):
        sys.exit(1)
