"""Charts (matplotlib, an optional extra): the roofline, every kernel a point sized by its time beside
a per-stage stacked bar of time by unit and bound; and the search's designs with their Pareto front."""
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


# One colour per (unit, bound), the same in both panels and in every chart: the bound picks the hue,
# the unit its shade; the unit also picks the marker, for readers who cannot tell the shades apart.
COLORS = {("matrix", "compute"): "#1f77b4", ("matrix", "memory"): "#d62728", ("matrix", "host"): "#7f7f7f",
          ("vector", "compute"): "#aec7e8", ("vector", "memory"): "#ff9896", ("vector", "host"): "#c7c7c7"}
MARKERS = {"matrix": "o", "vector": "^"}
HEADROOM = 1.15  # the axis above the tallest bar, so the legend never sits on it


def roofline_figure(result, report: dict):
    """The matplotlib figure of `effplan roofline --plot`: kernels on the roofline (left), time per stage
    by unit and bound (right)."""
    import matplotlib
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

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
    biggest = max(k.time_s for k in kernels)
    for (unit, bound), color in COLORS.items():
        chosen = [k for k in kernels if (k.unit, k.bound) == (unit, bound)]
        if chosen:
            roof.scatter([k.intensity for k in chosen], [k.flops / k.time_s for k in chosen], alpha=0.7,
                         s=[8 + 300 * k.time_s / biggest for k in chosen], color=color, marker=MARKERS[unit],
                         edgecolors="black", linewidths=0.3, label=f"{unit} unit, {bound}-bound")
    roof.set(xscale="log", yscale="log", xlabel="arithmetic intensity (FLOP/byte)", ylabel="achieved FLOP/s",
             title=f"{report['model']} on {device.name}, {dtype}, batch {result.batch}")
    roof.legend(fontsize=7, loc="lower right")

    stages: dict = {}
    for k in result.kernels:
        per = stages.setdefault(str(k.stage), {})
        per[k.unit, k.bound] = per.get((k.unit, k.bound), 0.0) + k.time_s * 1e3
    bottom = [0.0] * len(stages)
    for category, color in COLORS.items():
        heights = [per.get(category, 0.0) for per in stages.values()]
        if any(heights):
            bars.bar(list(stages), heights, bottom=bottom, color=color, label="{} unit, {}-bound".format(*category))
            bottom = [b + h for b, h in zip(bottom, heights)]
    bars.set_ylim(0, max(bottom) * HEADROOM)
    bars.set(xlabel="stage", ylabel="time (ms)", title=f"time per stage: {result.latency_s * 1e3:.3f} ms in all")
    bars.legend(fontsize=7)
    fig.tight_layout()
    return fig


def plot_roofline(result, report: dict, path: str) -> None:
    save(roofline_figure(result, report), path)


def pareto_figure(designs: list[dict], front: list[dict], stats: dict, constraints, model: str):
    """MACs against inference memory: every grid design within the limits, the Pareto front joined up,
    the designs listed (best first), the largest-φ design and the limits on these axes."""
    import matplotlib
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    from ..gate.budget import LIMITS

    mib, gmacs = (lambda d: d["inference_bytes"] / 2**20), (lambda d: d["macs"] / 1e9)
    fig, ax = plt.subplots(figsize=(7, 5))
    fitting = stats["fitting"]
    # thousands of points: one bitmap layer in an SVG, not thousands of paths
    ax.scatter(fitting["inference_bytes"] / 2**20, fitting["macs"] / 1e9, s=4, color="#c7c7c7", rasterized=True,
               label=f"grid designs within the limits ({len(fitting['macs']):,})")
    ordered = sorted(front, key=lambda d: d["inference_bytes"])
    ax.plot([mib(d) for d in ordered], [gmacs(d) for d in ordered], "-", color="#1f77b4", label="Pareto front")
    listed = [d for d in designs if d.get("phi") is None]
    ax.scatter([mib(d) for d in listed], [gmacs(d) for d in listed], s=30, color="#1f77b4", edgecolors="black",
               linewidths=0.5, zorder=3, label=f"the {len(listed)} listed")
    for d in designs:
        if d.get("phi") is not None:
            ax.scatter([mib(d)], [gmacs(d)], s=90, marker="*", color="#ff7f0e", edgecolors="black", zorder=4,
                       label=f"largest \u03c6 = {d['phi']:.2f} (resolution {d['resolution']})")
    others = []
    for key, value in constraints.limits.items():
        figure, shown = LIMITS[key].figure, LIMITS[key].show(value)
        if figure == "macs":
            ax.axhline(value / 1e9, color="black", ls=":", lw=1, label=f"limit: MACs {shown}")
        elif figure == "inference_bytes":
            ax.axvline(value / 2**20, color="black", ls="--", lw=1, label=f"limit: inference memory {shown}")
        else:
            others.append(f"{figure} {shown}")
    title = f"effplan search: {model}" + (f"\nalso within: {', '.join(others)}" if others else "")
    ax.set(xlabel="inference memory (MiB)", ylabel="GMACs", title=title)
    ax.legend(fontsize=7, loc="lower right")
    fig.tight_layout()
    return fig


def plot_pareto(designs: list[dict], front: list[dict], stats: dict, constraints, path: str, model: str) -> None:
    save(pareto_figure(designs, front, stats, constraints, model), path)


def save(fig, path: str) -> None:
    """Write a figure as SVG (its text as text, searchable and selectable) or PNG, atomically."""
    import io

    import matplotlib
    import matplotlib.pyplot as plt

    from ..base.files import write_atomic

    buffer = io.BytesIO() if path.lower().endswith(".png") else io.StringIO()
    with matplotlib.rc_context({"svg.fonttype": "none"}):
        fig.savefig(buffer, format=Path(path).suffix[1:].lower())
    plt.close(fig)
    write_atomic(path, buffer.getvalue())
