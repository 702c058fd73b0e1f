"""What a design costs: table, layers, compare, models."""
from __future__ import annotations


import click

from ..base.errors import EffplanError, did_you_mean, quote
from ..plan.profile import design_rows
from .options import FORMAT, BATCH, DEVICE_DTYPE, DIM, DTYPES, DTYPE, RUNTIME, OPTIMIZER, PRECISION, OUTPUT, design_options, DESIGN_KEYS, designs_from, emit, one_design, view_options, LAYER_SORT, LAYER_TOP, LAYER_BY, STRICT


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
@DEVICE_DTYPE
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
    from ..base.units import cost_dtype, dtype_origin
    from ..plan.hardware import load_device
    found = load_device(device) if device else None
    dtype, origin = cost_dtype(dtype, found), dtype_origin(dtype, found)
    pairs = designs_from(models, **query)
    rows = design_rows(pairs, batch, dtype, precision, optimizer, device, runtime, train)
    if sort_key == "latency_s" and not device:
        raise EffplanError("--sort latency_s needs --device")
    if sort_key:
        rows.sort(key=lambda r: r[sort_key])
    phi_columns = set() if compound_scaled(pairs) else {"phi", "macs_ratio", "two_pow_phi"}  # text only
    columns = ([c for c in TABLE_COLUMNS if c[1] not in phi_columns] + (DEVICE_COLUMNS if device else [])
               + (TRAIN_COLUMNS if train else []))
    if fmt == "json":
        emit(to_json(rows), output)
    else:
        preamble = header(batch, dtype, precision, optimizer, device, rows[0].get("runtime") if rows else None,
                          origin)
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
@click.option("--device", "devices", multiple=True, metavar="NAME|FILE",
              help="Add roofline latency and images/s on this device (repeatable).")
@RUNTIME
@BATCH
@DEVICE_DTYPE
@FORMAT
@view_options
@OUTPUT
def compare(models, dim_items, devices, runtime, batch, dtype, fmt, view, output):
    """Designs side by side, one column each, with latency per --device.

    \b
    effplan compare efficientnet-b4 efficientnetv2-s resnet-50
    effplan compare efficientnet-b4 efficientnetv2-s --device t4 --device a100-80gb --batch 8
    """
    from ..base.units import cost_dtype, dtype_origin
    from ..plan.hardware import load_device
    from ..plan.profile import analyze, device_rows
    from ..render.report import DEVICE_COLUMNS, TABLE_COLUMNS, header
    from ..render.tables import render_rows, to_json

    if runtime and not devices:
        raise EffplanError("--runtime needs --device")
    found = {name: load_device(name) for name in dict.fromkeys(devices)}  # an unknown name fails first
    pairs = designs_from(models, **{**dict.fromkeys(DESIGN_KEYS), "depth_rounding": "ceil", "scale_items": (),
                                    "dim_items": dim_items})
    at = cost_dtype(dtype, list(found.values()))
    profiles = [analyze(design, batch, at) for design, _ in pairs]
    rows = design_rows(pairs, batch, at, profiles=profiles)
    for name, device in found.items():
        device_dtype = cost_dtype(dtype, device)
        for row, extra in zip(rows, device_rows([p.graph for p in profiles], name, device_dtype, batch, runtime)):
            row.setdefault("devices", []).append({"dtype": device_dtype, **extra})
    if fmt == "json":
        return emit(to_json(rows), output)
    hidden = {"model", "macs_ratio", "two_pow_phi"} | (set() if compound_scaled(pairs) else {"phi"})
    metrics = [(h, key, f) for h, key, f in TABLE_COLUMNS if key not in hidden]
    exact = fmt == "csv"
    body = [{"metric": key if exact else h, **{r["model"]: r[key] if exact else f(r[key]) for r in rows}}
            for h, key, f in metrics]
    for i, (name, device) in enumerate(found.items()):
        for h, key, f in DEVICE_COLUMNS:
            d = rows[0]["devices"][i]
            label = f"{key}@{d['device']}" if exact else f"{h} ({d['device']}, {d['dtype']}, {d['runtime']})"
            body.append({"metric": label, **{r["model"]: r["devices"][i][key] if exact else f(r["devices"][i][key])
                                             for r in rows}})
    columns = [("metric", "metric", str)] + [(r["model"], r["model"], str) for r in rows]
    later_first = tuple(r["model"] for r in reversed(rows))  # designs past the terminal's width are hidden
    preamble = header(batch, at, origin=dtype_origin(dtype, list(found.values())))
    emit(render_rows(body, columns, fmt, "" if fmt == "csv" else preamble, view, later_first), output)


def compound_scaled(pairs) -> bool:
    """Whether any design was scaled by a compound coefficient (published or by the formula): only then do
    the φ columns say something."""
    return any(getattr(design, "coefficients", None) in ("published", "formula") for design, _ in pairs)


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
