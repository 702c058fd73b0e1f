"""What a design costs: table, layers, compare, models."""
from __future__ import annotations


import click

from ..base.errors import EffplanError, did_you_mean, quote
from ..plan.profile import design_rows
from .options import FORMAT, BATCH, DIM, DTYPES, DTYPE, RUNTIME, OPTIMIZER, PRECISION, OUTPUT, design_options, DESIGN_KEYS, designs_from, emit, one_design, view_options, LAYER_SORT, LAYER_TOP, LAYER_BY, STRICT


@click.command()
@click.argument("models", nargs=-1)
@design_options
@click.option("--device", default=None, help="Add roofline latency and throughput on this device (at --dtype).")
@RUNTIME
@click.option("--train", is_flag=True,
              help="With --device: add a training step's time and images/s at --batch on one device (effplan train).")
@click.option("--sort", "sort_key", type=click.Choice(["latency_s", "macs", "params", "training_bytes",
                                                       "training_step_s"]),
              default=None, help="Order rows by this figure, smallest first.")
@BATCH
@click.option("--dtype", type=DTYPES, default=None,
              help="Element type of weights and activations (default fp32; with --device, the device's half "
                   "precision as in effplan roofline).")
@OPTIMIZER
@PRECISION
@FORMAT
@view_options
@OUTPUT
def table(models, query, device, runtime, train, sort_key, batch, dtype, optimizer, precision, fmt, view, output):
    """One row per design: MODELS (default efficientnet-b0) at each --phi, or as published.

    \b
    effplan table --phi 0..7
    effplan table efficientnet-b0 efficientnet-b4 --format json
    effplan table efficientnet-b0 efficientnetv2-s --device a100-80gb --train --batch 128
    """
    from ..render.report import DEVICE_COLUMNS, TABLE_COLUMNS, TABLE_OPTIONAL, TRAIN_COLUMNS, header
    from ..render.tables import render_rows, to_json

    if runtime and not device:
        raise EffplanError("--runtime needs --device")
    if train and not device:
        raise EffplanError("--train needs --device (the training step is timed on it)")
    if sort_key == "training_step_s" and not train:
        raise EffplanError("--sort training_step_s needs --train")
    if dtype is None and device:
        from ..plan.hardware import load_device
        dtype = load_device(device).preferred_dtype
    dtype = dtype or "fp32"
    pairs = designs_from(models, **query)
    rows = design_rows(pairs, batch, dtype, precision, optimizer, device, runtime, train)
    if sort_key == "latency_s" and not device:
        raise EffplanError("--sort latency_s needs --device")
    if sort_key:
        rows.sort(key=lambda r: r[sort_key])
    columns = TABLE_COLUMNS + (DEVICE_COLUMNS if device else []) + (TRAIN_COLUMNS if train else [])
    if fmt == "json":
        emit(to_json(rows), output)
    else:
        preamble = header(batch, dtype, precision, optimizer, device, rows[0].get("runtime") if rows else None)
        if train and rows:
            preamble += (f"\n# train step = forward, backward and {optimizer} update of a batch of {batch} on one "
                         f"{device}, runtime {rows[0]['training_runtime']}, {precision} (effplan train)")
        emit(render_rows(rows, columns, fmt, "" if fmt == "csv" else preamble, view, TABLE_OPTIONAL), output)


@click.command()
@click.argument("model")
@design_options(single=True)
@LAYER_BY
@STRICT
@LAYER_SORT
@LAYER_TOP
@BATCH
@DTYPE
@FORMAT
@view_options
@OUTPUT
def layers(model, query, by, strict, sort_key, top, batch, dtype, fmt, view, output):
    """Per-layer (or per-block, per-stage) params, MACs, FLOPs and bytes of one design."""
    from ..plan.profile import analyze
    from ..render.report import render_layers

    emit(render_layers(analyze(one_design(model, query), batch, dtype, strict), by, fmt, view=view, sort=sort_key,
                       top=top), output)


@click.command()
@click.argument("models", nargs=-1, required=True)
@DIM
@BATCH
@DTYPE
@FORMAT
@view_options
@OUTPUT
def compare(models, dim_items, batch, dtype, fmt, view, output):
    """Designs side by side, one column each: effplan compare efficientnet-b4 efficientnetv2-s resnet-50."""
    from ..render.report import TABLE_COLUMNS, header
    from ..render.tables import render_rows, to_json

    pairs = designs_from(models, **{**dict.fromkeys(DESIGN_KEYS), "depth_rounding": "ceil", "scale_items": (),
                                    "dim_items": dim_items})
    rows = design_rows(pairs, batch, dtype)
    if fmt == "json":
        return emit(to_json(rows), output)
    metrics = [(h, key, f) for h, key, f in TABLE_COLUMNS if key not in ("model", "macs_ratio", "two_pow_phi")]
    exact = fmt == "csv"
    body = [{"metric": key if exact else h, **{r["model"]: r[key] if exact else f(r[key]) for r in rows}}
            for h, key, f in metrics]
    columns = [("metric", "metric", str)] + [(r["model"], r["model"], str) for r in rows]
    later_first = tuple(r["model"] for r in reversed(rows))  # designs past the terminal's width are hidden
    emit(render_rows(body, columns, fmt, "" if fmt == "csv" else header(batch, dtype), view, later_first), output)


@click.command()
@FORMAT
@view_options
@OUTPUT
def models(fmt, view, output):
    """The built-in models, with a line each."""
    from ..render.tables import render_rows, to_json
    from ..design.scaling import _builtin_spec, scaling_table
    from ..design.spec import builtin_spec_paths

    rows = []
    for name in builtin_spec_paths():
        spec = _builtin_spec(name)
        rows.append({"name": name, "family": spec.family, "kind": "spec", "description": spec.description,
                     "resolution": spec.resolution})
    for name, p in scaling_table()[1].items():
        if name in builtin_spec_paths():
            continue
        spec = _builtin_spec(p.spec)
        rows.append({"name": name, "family": spec.family, "kind": "published",
                     "description": f"{p.spec} scaled: width {p.width:g}, depth {p.depth:g}, {p.resolution} px"
                                    f" (published coefficients)", "resolution": p.resolution})
    rows.sort(key=lambda r: (r["family"], r["name"]))
    if fmt == "json":
        return emit(to_json(rows), output)
    if fmt == "csv":
        columns = [(h, h, str) for h in ("name", "family", "kind", "resolution", "description")]
        return emit(render_rows(rows, columns, fmt), output)
    columns = [(h.capitalize(), h, str) for h in ("name", "kind", "resolution", "description")]
    families = dict.fromkeys(r["family"] for r in rows)
    sections = [render_rows([r for r in rows if r["family"] == family], columns, fmt,
                            f"{'### ' if fmt == 'markdown' else ''}{family}", view, ("description",))
                for family in families]
    emit("\n".join(sections), output)


@click.command()
@click.argument("name")
@click.option("--path", "path_only", is_flag=True, help="Print where the file is instead of its text.")
def show(name, path_only):
    """Print a built-in model's spec or a device's file, to copy and change.

    \b
    effplan show efficientnet-b0 > my-net.toml    # then: effplan layers my-net.toml
    effplan show t4 --path
    """
    from ..design.scaling import model_names, scaling_table
    from ..design.spec import builtin_spec_paths
    from ..plan.hardware import builtin_device_paths

    key = name.strip().lower()
    published = scaling_table()[1]
    note = ""
    if key in published and key not in builtin_spec_paths():  # a published member: its base spec, scaled
        p = published[key]
        note = (f"# {key} is {p.spec} scaled by its published coefficients: width {p.width:g}, depth {p.depth:g}, "
                f"{p.resolution} px (specs/scaling.toml); `effplan layers {key}` applies them\n")
        key = p.spec
    files = {**builtin_device_paths(), **builtin_spec_paths()}  # no name is both a model and a device
    if key not in files:
        raise EffplanError(f"unknown model or device {quote(name)}{did_you_mean(key, [*model_names(), *files])}; "
                           f"'effplan models' and 'effplan devices' list them")
    if path_only:
        return click.echo(str(files[key]))
    click.echo(note + files[key].read_text(encoding="utf-8"), nl=False)
