"""Training time: a step's forward, backward, optimizer and communication, and a whole run's hours."""
from __future__ import annotations

import click

from ..gate.budget import MAX_BATCH
from ..base.errors import EffplanError
from .options import (NOTES, CHECKPOINT, FORMAT, OPTIMIZER, PRECISION, OUTPUT, RUNTIME, batch_option, design_options,
                      describe_design, emit, file_checks, one_design, view_options, warn)


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
@batch_option("Per-device batch (default: the largest that fits each stage).")
@click.option("--global-batch", type=click.IntRange(1, MAX_BATCH), default=None, help="Batch over all devices.")
@click.option("--epochs", type=click.IntRange(1, 1 << 20), default=None,
              help="Epochs of the run (default: the authors' recipe where the spec records one, EfficientNet and "
                   "EfficientNetV2: 350; required otherwise).")
@click.option("--dataset-size", "--images", "dataset_size", type=click.IntRange(1, 1 << 40), default=1281167,
              show_default=True, help="Training images (ImageNet-1k: 1,281,167).")
@RUNTIME
@PRECISION
@OPTIMIZER
@CHECKPOINT
@click.option("--progressive", default=None, metavar="MIN:MAX:STAGES",
              help="Progressive learning: image side rising from MIN to MAX over STAGES stages (128:300:4).")
@click.option("--input-rate", type=click.FloatRange(min=0, min_open=True), default=None, metavar="IMAGES/S",
              help="Cap throughput at the input pipeline's rate, all devices together (default: not modelled).")
@click.option("--price-per-hour", type=click.FloatRange(min=0), default=None, help="Price of one device-hour.")
@click.option("--sort", "sort_key", type=click.Choice(["time_s", "macs", "flops", "bytes", "intensity", "tile_loss"]),
              default=None, help="Add the step's kernels (the last stage's), ordered by this figure, largest first.")
@click.option("--top", type=click.IntRange(1), default=None, metavar="N",
              help="Add the step's first N kernels (with --sort, the N largest; alone, the N slowest).")
@FORMAT
@view_options
@OUTPUT
def train(model, query, device, devices, hosts, network_gbs, link_gbs, batch, global_batch, epochs, dataset_size,
          runtime, precision, optimizer, checkpoint, progressive, input_rate, price_per_hour, sort_key, top, fmt, view,
          output):
    """Training step time and the hours (and cost) of a whole run, per device and in total.

    \b
    effplan train efficientnet-b0 --device a100-80gb --devices 8 --batch 256 --epochs 350
    effplan train efficientnetv2-s --device tpu-v3 --devices 16 --global-batch 4096 --epochs 350 \\
        --progressive 128:300:4 --optimizer adam
    """
    from ..plan.hardware import load_device
    from ..plan.training_run import parse_progressive, run_link, training_report, training_run
    from ..render.report import render_train

    found = load_device(device)
    design = one_design(model, query)
    file_checks(design, batch or 1, checkpoint, train=True)
    recipe = design.spec.recipe if design.spec is not None else None
    if epochs is None:
        if recipe is None or recipe.epochs is None:
            raise EffplanError(f"--epochs: {design.name} records no training recipe; give the run's epochs "
                               f"(EfficientNet's recipe is 350)")
        epochs = recipe.epochs
        NOTES.append(f"{epochs} epochs, the authors' recipe ({recipe.source}); --epochs changes it")
    link = run_link(found, devices, hosts, network_gbs, link_gbs)
    stages = parse_progressive(progressive) if progressive else None
    run = training_run(design, found, batch=batch, global_batch=global_batch, devices=devices, epochs=epochs,
                       dataset_size=dataset_size, progressive=stages, price_per_hour=price_per_hour, link=link,
                       runtime=runtime, precision=precision, optimizer=optimizer, checkpoint=checkpoint,
                       input_rate=input_rate)
    report = training_report(run, describe_design(design), hosts=hosts, progressive=stages)
    if sort_key or top:
        from ..render.report import sort_top, step_kernel_rows
        report["kernels"], report["kernels_kept"] = sort_top(step_kernel_rows(run.stages[-1].step),
                                                             sort_key or "time_s", top)
    for r in report["stages"]:
        if not r["fits"]:
            warn(f"batch {r['batch']} per device does not fit {found.name} at {r['resolution']} px "
                 f"(largest {r['largest_batch']})")
    emit(render_train(report, fmt, view), output)
