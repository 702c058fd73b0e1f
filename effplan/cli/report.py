"""The HTML report: one self-contained page for a design, or a comparison of several."""
from __future__ import annotations

import click

from ..base.errors import EffplanError
from ..plan.memory import inference_graph
from ..plan.profile import analyze, design_rows, device_rows, network_key
from .options import BATCH, DEVICE_DTYPE, OUTPUT, RUNTIME, design_options, designs_from, emit, file_checks, train_options

MAX_DEVICES = 8
MAX_DESIGNS = 100  # a comparison page
MAX_PAIRS = 200  # designs x devices: 100 designs at phi 15-16 on 8 devices took 100 s (docs/robustness.md)


@click.command()
@click.argument("models", nargs=-1)
@design_options
@click.option("--device", "devices", multiple=True, metavar="NAME",
              help="Roofline latency on this catalog device or device file (repeatable).")
@DEVICE_DTYPE
@RUNTIME
@BATCH
@train_options
@OUTPUT
def report(models, query, devices, dtype, runtime, batch, train, optimizer, precision, checkpoint, inplace, fold_bn, fuse_se,
           order, output):
    """One HTML page that opens offline: a design's summary, layers, roofline per device and memory
    over the schedule; or, for several designs (M1 M2 ..., --phi 0..7), the comparison and scaling.

    \b
    effplan report efficientnet-b4 --device t4 -o b4.html
    effplan report efficientnet-b7 --device a100-80gb --train -o b7.html
    effplan report --phi 0..7 --device t4 -o family.html
    """
    from ..base.units import cost_dtype, dtype_origin
    from ..plan.hardware import load_device
    from ..render.html import compare_page

    if runtime and not devices:
        raise EffplanError("--runtime needs --device")
    if len(devices) > MAX_DEVICES:
        raise EffplanError(f"--device given {len(devices)} times; at most {MAX_DEVICES}")
    found = {name: load_device(name) for name in dict.fromkeys(devices)}  # fails early on an unknown one
    pairs = designs_from(models, **query)
    if len(pairs) > MAX_DESIGNS:
        raise EffplanError(f"{len(pairs)} designs asked; a report compares at most {MAX_DESIGNS} (a table or "
                           f"compare lists more)")
    if len(pairs) * len(found) > MAX_PAIRS:
        raise EffplanError(f"{len(pairs)} designs on {len(found)} devices; a report holds at most {MAX_PAIRS} "
                           f"design-device pairs")
    options = {"batch": batch, "dtype": cost_dtype(dtype, list(found.values())), "device_dtype": dtype,
               "dtype_origin": dtype_origin(dtype, list(found.values())), "train": train,
               "precision": precision, "optimizer": optimizer, "checkpoint": checkpoint, "inplace": inplace,
               "fold_bn": fold_bn, "fuse_se": fuse_se, "order": order, "runtime": runtime}
    if len(pairs) == 1:
        return emit(_model_page(pairs[0], list(found.values()), options), output)
    profiles = [analyze(design, batch, options["dtype"]) for design, _ in pairs]  # once, for every device
    rows = design_rows(pairs, batch, options["dtype"], precision, optimizer, profiles=profiles)
    graphs = [p.graph for p in profiles]
    at_devices = []
    for name, device in found.items():  # as `effplan table --device`: at the device's precision unless --dtype
        device_dtype = cost_dtype(dtype, device)
        at_devices.append({"device": device.name, "dtype": device_dtype,
                           "rows": device_rows(graphs, name, batch=batch, dtype=device_dtype, runtime=runtime)})
    emit(compare_page(rows, at_devices, options), output)


def _model_page(pair, devices, options) -> str:
    from ..design.blocks import build
    from ..plan.memory import training_memory
    from ..plan.roofline import roofline
    from ..render.html import device_data, model_page
    from ..base.units import cost_dtype
    from ..render.report import memory_report

    design, base = pair
    batch, dtype = options["batch"], options["dtype"]
    file_checks(design, batch, options["checkpoint"], train=options.get("train", False))
    profile = analyze(design, batch, dtype)
    base_macs = None
    if base is not None:
        base_macs = (profile.totals.macs if network_key(base) == network_key(design)
                     else analyze(base, batch, dtype).totals.macs)
    step = training_memory(profile.graph, options["precision"], options["optimizer"])  # the summary's, as table's
    training = None
    if options["train"]:
        training = (step if options["checkpoint"] == "none" else
                    training_memory(profile.graph, options["precision"], options["optimizer"], options["checkpoint"]))
    memory = memory_report(inference_graph(design, batch, options["fold_bn"]), design, batch, dtype,
                           inplace=options["inplace"], fold_bn=options["fold_bn"], fuse_se=options["fuse_se"],
                           order=options["order"], training=training, by="layer")
    graph = build(design, batch) if devices else None
    at_devices = [device_data(roofline(graph, d, cost_dtype(options["device_dtype"], d), batch,
                                       runtime=options["runtime"]), design)
                  for d in devices]
    for data, device in zip(at_devices, devices):  # the questions asked of a device: what fits, how long to train
        data["fit"] = fit_answer(design, device, options)
        if options["train"]:
            data["training"] = training_answer(design, device, options)
    return model_page(profile, base_macs, step, memory, at_devices, options)


def fit_answer(design, device, options) -> dict | None:
    """The largest batch on `device` (its memory less fit's reserve): inference at the device's precision and,
    with --train, a training step; None for a file whose batch is fixed (nothing to choose)."""
    from ..base.units import cost_dtype
    from ..plan.memory import DEFAULT_RESERVE, largest_batch, memory_budget, memory_by_batch

    if design.spec is None and not design.symbolic_batch:
        return None
    capacity, budget = memory_budget(device.memory_bytes, DEFAULT_RESERVE)
    common = {k: options[k] for k in ("precision", "optimizer", "checkpoint", "inplace", "fold_bn", "fuse_se",
                                      "order")}
    dtype = cost_dtype(options["device_dtype"], device)
    answer = {"capacity_bytes": capacity, "budget_bytes": budget, "reserve": DEFAULT_RESERVE,
              "inference": {"dtype": dtype, "batch": largest_batch(
                  memory_by_batch(design, train=False, dtype=dtype, **common), budget).batch}}
    if options["train"]:
        answer["training"] = {"precision": options["precision"], "optimizer": options["optimizer"],
                              "checkpoint": options["checkpoint"], "batch": largest_batch(
                                  memory_by_batch(design, train=True, dtype=dtype, **common), budget).batch}
    return answer


def training_answer(design, device, options) -> dict:
    """`effplan train` on one device at the largest batch that fits: a step, an epoch of ImageNet and the run
    of the authors' recipe (one epoch where the spec records none)."""
    from ..base.errors import EffplanError
    from ..plan.training_run import training_report, training_run
    from ..render.report import describe

    recipe = design.spec.recipe if design.spec is not None else None
    epochs = recipe.epochs if recipe is not None and recipe.epochs else 1
    try:
        run = training_run(design, device, epochs=epochs, precision=options["precision"],
                           optimizer=options["optimizer"], checkpoint=options["checkpoint"])
    except EffplanError as exc:  # not even batch 1 fits, say: the page says so instead of failing
        return {"error": str(exc)}
    report = training_report(run, describe(design))
    stage = report["stages"][-1]
    return {"epochs": epochs, "recipe": recipe.source if epochs > 1 else None, "runtime": report["runtime"],
            "precision": report["precision"], "batch": stage["batch"], "step_s": stage["step_s"],
            "images_per_s": stage["images_per_s"], "epoch_s": stage["epoch_s"], "hours": report["totals"]["hours"],
            "dataset_size": report["dataset_size"]}
