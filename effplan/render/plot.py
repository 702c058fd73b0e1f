"""The roofline chart (matplotlib, an optional extra): every kernel a point sized by its time,
beside a per-stage stacked bar of time by unit and bound."""
from __future__ import annotations

from pathlib import Path

from ..base.errors import EffplanError

FORMATS = (".svg", ".png")


def check_plot_path(path: str) -> None:
    """Fail before any work on a path that cannot take a plot."""
    target = Path(path)
    if target.suffix.lower() not in FORMATS:
        raise EffplanError(f"--plot '{path}': the file must end in .svg or .png")
    if not target.parent.is_dir():
        raise EffplanError(f"--plot '{path}': folder {target.parent} does not exist")
    try:
        import matplotlib  # noqa: F401
    except ImportError:
        raise EffplanError("--plot needs matplotlib: pip install 'effplan[plot]'") from None


def plot_roofline(result, report: dict, path: str) -> None:
    import io

    import matplotlib
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    from ..base.files import write_atomic

    device, dtype = result.device, result.dtype
    fig, (roof, bars) = plt.subplots(1, 2, figsize=(13, 5.5), gridspec_kw={"width_ratios": [3, 2]})
    kernels = [k for k in result.kernels if k.bytes and k.flops]
    lo = min(k.intensity for k in kernels) / 2
    hi = max(k.intensity for k in kernels) * 2
    bandwidth = device.achievable_bandwidth
    for unit, style in (("matrix", "-"), ("vector", "--")):
        peak = device.compute(unit, dtype)
        knee = peak / bandwidth
        xs = [lo, min(max(knee, lo), hi), hi]
        roof.plot(xs, [min(x * bandwidth, peak) for x in xs], style, color="black", lw=1,
                  label=f"{unit} roof: {peak / 1e12:.3g} TFLOP/s achievable, knee {knee:.0f} FLOP/B")
    colors = {"compute": "tab:blue", "memory": "tab:red", "overhead": "tab:gray"}
    biggest = max(k.time_s for k in kernels)
    for bound, color in colors.items():
        chosen = [k for k in kernels if k.bound == bound]
        if chosen:
            roof.scatter([k.intensity for k in chosen], [k.flops / k.time_s for k in chosen], alpha=0.6,
                         s=[8 + 300 * k.time_s / biggest for k in chosen], color=color, label=f"{bound}-bound kernels")
    roof.set(xscale="log", yscale="log", xlabel="arithmetic intensity (FLOP/byte)", ylabel="achieved FLOP/s",
             title=f"{report['model']} on {device.name}, {dtype}, batch {result.batch}")
    roof.legend(fontsize=7, loc="lower right")

    stages: dict = {}
    for k in result.kernels:
        stages.setdefault(str(k.stage), {}).setdefault(f"{k.unit}/{k.bound}", 0.0)
        stages[str(k.stage)][f"{k.unit}/{k.bound}"] += k.time_s * 1e3
    categories = sorted({c for per in stages.values() for c in per})
    bottom = [0.0] * len(stages)
    for category in categories:
        heights = [per.get(category, 0.0) for per in stages.values()]
        bars.bar(list(stages), heights, bottom=bottom, label=category)
        bottom = [b + h for b, h in zip(bottom, heights)]
    bars.set(xlabel="stage", ylabel="time (ms)", title=f"time per stage: {result.latency_s * 1e3:.3f} ms in all")
    bars.legend(fontsize=7)
    fig.tight_layout()
    buffer = io.BytesIO() if path.lower().endswith(".png") else io.StringIO()
    fig.savefig(buffer, format=Path(path).suffix[1:].lower())
    plt.close(fig)
    write_atomic(path, buffer.getvalue())


def plot_pareto(designs: list[dict], front: list[dict], path: str, model: str) -> None:
    """MACs against inference memory for the designs found, the Pareto front joined up."""
    import io

    import matplotlib
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    from ..base.files import write_atomic

    fig, ax = plt.subplots(figsize=(7, 5))
    ax.scatter([d["inference_bytes"] / 2**20 for d in designs], [d["macs"] / 1e9 for d in designs],
               color="tab:gray", label="designs that fit")
    ordered = sorted(front, key=lambda d: d["inference_bytes"])
    ax.plot([d["inference_bytes"] / 2**20 for d in ordered], [d["macs"] / 1e9 for d in ordered], "o-",
            color="tab:blue", label="Pareto front")
    ax.set(xlabel="inference memory (MiB)", ylabel="GMACs", title=f"effplan search: {model}")
    ax.legend()
    fig.tight_layout()
    buffer = io.BytesIO() if path.lower().endswith(".png") else io.StringIO()
    fig.savefig(buffer, format=Path(path).suffix[1:].lower())
    plt.close(fig)
    write_atomic(path, buffer.getvalue())
