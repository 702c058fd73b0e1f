"""ONNX files: export a design, analyze any file."""
from __future__ import annotations


import click

from ..base.errors import EffplanError
from ..base.units import MAX_DIM
from .options import FORMAT, DTYPES, OUTPUT, design_options, emit, one_design


@click.command()
@click.argument("model")
@design_options
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
    from ..graph.onnx_io import needs_external_data, save, to_onnx

    if batch is not None and dynamic_batch:
        raise EffplanError("--batch and --dynamic-batch exclude each other: a dynamic batch is bound at run time")
    batch = batch or 1
    design = one_design(model, query)
    if not 14 <= opset <= onnx.defs.onnx_opset_version():
        raise EffplanError(f"--opset must be between 14 (HardSwish) and {onnx.defs.onnx_opset_version()}, got {opset}")
    graph = build(design, batch)
    if fold_bn:
        graph = fold_batch_norm(graph)
    proto = to_onnx(graph, design, opset=opset, dynamic_batch=dynamic_batch, weights=weights)
    external = needs_external_data(proto)
    try:  # in memory before writing, except a model too large for one message: as the file it became
        if not external:
            onnx.checker.check_model(proto)
        files = save(proto, output)
        if external:
            onnx.checker.check_model(files[0])
    except onnx.checker.ValidationError as exc:
        raise EffplanError(f"the exported graph is not valid at opset {opset}: {str(exc).splitlines()[0]}") from None
    t = profile(graph).totals
    form = "params with BN folded into the convs" if fold_bn else "params"
    click.echo(f"wrote {', '.join(files)}: {design.name} at {design.resolution}px, batch "
               f"{'N (dynamic)' if dynamic_batch else batch}, opset {opset}, {t.params:,} {form}"
               f" + {t.buffers:,} BN statistics in {len(proto.graph.initializer)} initializers")
    if check:
        click.echo(run_check(files[0], batch if not dynamic_batch else 1))


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
@click.option("--dim", "dim_items", multiple=True, metavar="NAME=VALUE", help="Size of a named symbolic dimension.")
@click.option("--by", type=click.Choice(["layer", "block", "stage", "op"]), default="layer", show_default=True)
@click.option("--dtype", type=DTYPES, default=None,
              help="Element type for bytes (default: the model input's).")
@click.option("--strict", is_flag=True, help="Fail when an op has no cost function.")
@FORMAT
@OUTPUT
def analyze(path, batch, dim_items, by, dtype, strict, fmt, output):
    """Per-layer costs of any ONNX model, the same report as `effplan layers`."""
    from ..plan.profile import profile
    from ..graph.onnx_io import analyze_file, resolution
    from ..render.report import render_layers

    dims = {}
    for item in dim_items:
        key, sep, value = item.partition("=")
        value = value.strip()
        if not sep or not key.strip() or not value.isdigit() or not 1 <= int(value) <= MAX_DIM:
            raise EffplanError(f"--dim '{item}': expected NAME=VALUE with a size from 1 to 2^40")
        dims[key.strip()] = int(value)
    graph, meta, file_dtype = analyze_file(path, batch, dims)
    result = profile(graph, None, graph.graph["batch"], dtype or file_dtype, strict)
    info = {"model": meta.get("model", graph.graph["name"]), "phi": float(meta["phi"]) if meta.get("phi") else None,
            "depth_mult": float(meta["depth_mult"]) if "depth_mult" in meta else None,
            "width_mult": float(meta["width_mult"]) if "width_mult" in meta else None,
            "resolution": resolution(graph), "source": str(path), "weight_inputs": graph.graph["weight_inputs"]}
    notes = ["BatchNormalization is folded into the convs in this file"] if meta.get("folded_bn") == "True" else []
    if graph.graph["weight_inputs"]:
        fed = graph.graph["weight_inputs"]
        notes.append(f"{len(fed)} weights are graph inputs, fed at run time (exported without parameters), "
                     f"counted as params: {', '.join(fed[:3])}{', ...' if len(fed) > 3 else ''}")
    emit(render_layers(result, by, fmt, info, "\n# ".join(notes)), output)
