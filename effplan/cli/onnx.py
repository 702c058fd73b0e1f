"""ONNX files: export a design, analyze any file."""
from __future__ import annotations

import click

from ..base.errors import EffplanError
from ..base.units import MAX_DIM
from .options import FORMAT, DIM, DTYPES, OUTPUT, design_options, emit, one_design, parse_dims, view_options, LAYER_SORT, \
    LAYER_TOP, LAYER_BY, STRICT


@click.command()
@click.argument("model")
@design_options(single=True)
@click.option("--batch", type=click.IntRange(1, MAX_DIM), default=None, help="Batch size of the input (default 1).")
@click.option("--dynamic-batch", is_flag=True, help="A symbolic batch dimension 'N' instead of --batch.")
@click.option("--opset", type=int, default=17, show_default=True, help="ONNX opset (14 or newer).")
@click.option("--fold-bn", is_flag=True, help="Fold BatchNormalization into the convs (the inference graph).")
@click.option("--weights", type=click.Choice(["random", "zeros"]), default="random", show_default=True,
              help="Initializer values: seeded He-normal (real arithmetic) or zeros.")
@click.option("--check", is_flag=True, help="Run the file in onnxruntime on random input and report.")
@click.option("-o", "--output", type=click.Path(dir_okay=False), required=True, help="The .onnx file to write.")
def export(model, query, batch, dynamic_batch, opset, fold_bn, weights, check, output):
    """Write a design as an ONNX model that runtimes execute."""
    import onnx

    from ..plan.profile import profile
    from ..design.blocks import build
    from ..graph.builder import fold_batch_norm
    from ..base.resources import memory_left
    from ..base.units import human_bytes
    from ..onnx.export import export as export_file

    if batch is not None and dynamic_batch:
        raise EffplanError("--batch and --dynamic-batch exclude each other: a dynamic batch is bound at run time")
    batch = batch or 1
    from ..onnx.model import Imported

    design = one_design(model, query)
    if isinstance(design, Imported):  # its graph holds no weights of ours to write
        raise EffplanError(f"export writes a built design; {design.name} is already an ONNX file (analyze, memory, "
                           f"roofline and the other commands read it as it is)")
    if not 14 <= opset <= onnx.defs.onnx_opset_version():
        raise EffplanError(f"--opset must be between 14 (HardSwish) and {onnx.defs.onnx_opset_version()}, got {opset}")
    graph = build(design, batch)
    if fold_bn:
        graph = fold_batch_norm(graph)
    if check:
        refuse_unrunnable(graph)
    t = profile(graph).totals
    if check:  # onnxruntime holds every weight, and more: refuse before writing, not when killed
        left = memory_left()
        if left is not None and 3 * t.weight_bytes > left:
            raise EffplanError(f"--check: onnxruntime would need about {human_bytes(3 * t.weight_bytes)} for "
                               f"{human_bytes(t.weight_bytes)} of weights; {human_bytes(left)} is left")
    files = export_file(graph, design, output, opset=opset, dynamic_batch=dynamic_batch, weights=weights)
    form = "params with BN folded into the convs" if fold_bn else "params"
    click.echo(f"wrote {', '.join(files)}: {design.name} at {design.resolution}px, batch "
               f"{'N (dynamic)' if dynamic_batch else batch}, opset {opset}, {t.params:,} {form}"
               f" + {t.buffers:,} BN statistics in {sum(len(graph.nodes[n]['weights']) for n in graph)} initializers")
    if check:
        click.echo(run_check(files[0], batch if not dynamic_batch else 1))


def refuse_unrunnable(graph) -> None:
    """--check runs the graph: refuse, before anything is allocated, when its fp32 input, peak live
    activations and weights alone exceed the memory left (onnxruntime needs at least that)."""
    from ..base.resources import memory_left
    from ..base.units import human_bytes
    from ..plan.measure import machine_memory
    from ..plan.profile import profile

    t = profile(graph).totals
    need, have = t.peak_activation_bytes + t.weight_bytes, memory_left() or machine_memory()
    if need > have:
        raise EffplanError(f"--check would need at least {human_bytes(need)} to run (peak activations with the "
                           f"input, plus weights, fp32), more than the {human_bytes(have)} of memory left: lower "
                           f"--batch or --resolution, or export without --check")


def run_check(path: str, batch: int) -> str:
    """Run an ONNX file in onnxruntime (CPU) on seeded random input: output shape, finiteness, time."""
    import statistics
    import time

    try:
        import numpy as np
        import onnxruntime as ort
    except ImportError:
        raise EffplanError("--check needs onnxruntime: pip install 'effplan[run]'") from None
    session = ort.InferenceSession(path, providers=["CPUExecutionProvider"])
    inp = session.get_inputs()[0]
    shape = [batch if not isinstance(d, int) else d for d in inp.shape]
    x = np.random.default_rng(0).standard_normal(shape, dtype=np.float32)
    times = []
    for _ in range(5):
        start = time.perf_counter()
        (y,) = session.run(None, {inp.name: x})[:1]
        times.append(time.perf_counter() - start)
    return (f"onnxruntime {ort.__version__} (CPU): output {list(y.shape)}, "
            f"{'finite' if np.isfinite(y).all() else 'NOT FINITE'}, {statistics.median(times) * 1e3:.1f} ms median of 5 runs")


@click.command()
@click.argument("path", type=click.Path(dir_okay=True))
@click.option("--batch", type=click.IntRange(1, MAX_DIM), default=None,
              help="Size of a symbolic batch dimension (default: 1; a fixed batch is the file's).")
@DIM
@LAYER_BY
@click.option("--dtype", type=DTYPES, default=None,
              help="Element type for bytes (default: the model input's).")
@STRICT
@LAYER_SORT
@LAYER_TOP
@FORMAT
@view_options
@OUTPUT
def analyze(path, batch, dim_items, by, dtype, strict, sort_key, top, fmt, view, output):
    """Per-layer costs of any ONNX model, the same report as `effplan layers`."""
    from ..plan.profile import profile
    from ..onnx.model import meta_number
    from ..onnx.importer import analyze_file, resolution
    from ..render.report import render_layers

    graph, meta, file_dtype = analyze_file(path, batch, parse_dims(dim_items))
    result = profile(graph, None, graph.graph["batch"], dtype or file_dtype, strict)
    info = {"model": meta.get("model", graph.graph["name"]), "phi": meta_number(meta, "phi"),
            "depth_mult": meta_number(meta, "depth_mult"), "width_mult": meta_number(meta, "width_mult"),
            "resolution": resolution(graph), "source": str(path), "weight_inputs": graph.graph["weight_inputs"]}
    notes = ["BatchNormalization is folded into the convs in this file"] if meta.get("folded_bn") == "True" else []
    ops = {graph.nodes[n]["op"] for n in graph.nodes}
    if not notes and "Conv" in ops and "BatchNormalization" not in ops:
        notes.append("no BatchNormalization after the convs: folded into them (an inference export), or the model "
                     "has none; a training model's params add BN scale and shift, its buffers the running statistics")
    from ..onnx.importer import computed_params_note

    if computed_params_note(graph):
        notes.append(computed_params_note(graph))
    if graph.graph["weight_inputs"]:
        fed = graph.graph["weight_inputs"]
        notes.append(f"{len(fed)} weights are graph inputs, fed at run time (exported without parameters), "
                     f"counted as params: {', '.join(fed[:3])}{', ...' if len(fed) > 3 else ''}")
    emit(render_layers(result, by, fmt, info, "\n# ".join(notes), view, sort_key, top), output)
