"""A whole training run: EfficientNetV2's progressive stages, the per-device batch each stage can
afford, data-parallel links across devices and hosts, the hours and cost, and the report that says
so. One step's time is training.py's."""
from __future__ import annotations

from dataclasses import dataclass

from ..base.errors import EffplanError
from .hardware import Device
from .memory import DEFAULT_OPTIMIZER, DEFAULT_PRECISION, DEFAULT_RESERVE, largest_batch, memory_budget, training_memory
from .bands import describe as describe_band
from .roofline import step_bound
from .parallel import Link, device_link
from .training import Step, training_step


def parse_progressive(text: str) -> tuple[int, int, int]:
    """'128:300:4' or '128..300:4': smallest and largest image side and the number of stages."""
    import re
    m = re.fullmatch(r"\s*(\d+)\s*(?::|\.\.)\s*(\d+)\s*:\s*(\d+)\s*", text or "")
    if not m:
        raise EffplanError(f"--progressive '{text}': expected MIN:MAX:STAGES, e.g. 128:300:4")
    low, high, stages = map(int, m.groups())
    if not (1 <= low <= high) or stages < 1 or (stages == 1 and low != high):
        raise EffplanError(f"--progressive '{text}': need 1 <= MIN <= MAX and at least 1 stage (2 when MIN < MAX)")
    return low, high, stages


def progressive_stages(low: int, high: int, stages: int, epochs: int) -> list[tuple[int, int]]:
    """(image side, epochs) per stage: sides grow linearly from low to high (rounded down to a whole
    pixel), epochs are split evenly with the remainder in the last stage (EfficientNetV2, Section 4.2:
    350 epochs in four stages, sizes and regularisation rising linearly)."""
    if epochs < stages:
        raise EffplanError(f"{epochs} epochs cannot be split into {stages} stages")
    each = epochs // stages
    sides = [low + (high - low) * i // (stages - 1) if stages > 1 else high for i in range(stages)]
    return [(side, each + (epochs - each * stages if i == stages - 1 else 0)) for i, side in enumerate(sides)]


@dataclass(frozen=True)
class Stage:
    resolution: int
    epochs: int
    batch: int  # per device
    global_batch: int
    steps_per_epoch: int
    step: Step
    largest_batch: int  # per device, that fits

    @property
    def seconds(self) -> float:
        return self.epochs * self.steps_per_epoch * self.step.time_s


@dataclass(frozen=True)
class Run:
    stages: tuple[Stage, ...]
    devices: int
    dataset_size: int
    price_per_hour: float | None  # per device-hour

    @property
    def seconds(self) -> float:
        return sum(s.seconds for s in self.stages)

    @property
    def hours(self) -> float:
        return self.seconds / 3600

    @property
    def cost(self) -> float | None:
        return None if self.price_per_hour is None else self.hours * self.devices * self.price_per_hour


def fitting_batch(design, device: Device, precision: str, optimizer: str, checkpoint: str) -> int:
    """The largest per-device batch whose training step fits the device less the reserve `effplan fit` keeps
    (memory.py's DEFAULT_RESERVE)."""
    from ..design.blocks import build

    graph = build(design, 1)
    budget = memory_budget(device.memory_bytes, DEFAULT_RESERVE)[1]
    return largest_batch(lambda b: training_memory(graph, precision, optimizer, checkpoint, scale=b).total_bytes,
                         budget).batch


def training_run(design, device: Device, *, batch: int | None = None, global_batch: int | None = None,
                 devices: int = 1, epochs: int = 1, dataset_size: int = 1281167, progressive=None,
                 price_per_hour: float | None = None, link: Link | None = None, **options) -> Run:
    """A whole run: E epochs of a dataset of D images, in one stage at the design's resolution or in
    progressive stages `(low, high, stages)`. The per-device batch is `batch`, or `global_batch` /
    devices, or (neither given) the largest that fits each stage's resolution."""
    from ..design.blocks import build
    from ..design.scaling import with_overrides

    if batch is not None and global_batch is not None:
        raise EffplanError("give --batch (per device) or --global-batch, not both")
    if global_batch is not None:
        if global_batch % devices:
            raise EffplanError(f"--global-batch {global_batch} does not split evenly over {devices} devices")
        batch = global_batch // devices
    if epochs < 1 or dataset_size < 1:
        raise EffplanError("epochs and the dataset size must be at least 1")
    if progressive and design.spec is None:  # an ONNX file has one input size: progressive stages would rescale it
        from ..onnx.model import refuse_rescaling
        refuse_rescaling(design.path, ["--progressive"])
    plan = progressive_stages(*progressive, epochs) if progressive else [(design.resolution, epochs)]
    precision = options.get("precision", DEFAULT_PRECISION)
    optimizer = options.get("optimizer", DEFAULT_OPTIMIZER)
    checkpoint = options.get("checkpoint", "none")
    stages = []
    for side, stage_epochs in plan:
        at = design if side == design.resolution else with_overrides(design, resolution=side)
        largest = fitting_batch(at, device, precision, optimizer, checkpoint)
        per_device = batch if batch is not None else largest
        if per_device < 1:
            raise EffplanError(f"not even a batch of 1 fits {device.name} at {side} px for training")
        step = training_step(build(at, per_device), device, devices=devices, link=link, **options)
        total = per_device * devices
        stages.append(Stage(side, stage_epochs, per_device, total, -(-dataset_size // total), step, largest))
    return Run(tuple(stages), devices, dataset_size, price_per_hour)


def time_figures(run: Run) -> dict:
    """What budgets, `search` and `table --train` bound and show: the step time and images/s (over all
    devices) of the run's last stage (its largest resolution; the only one without progressive stages),
    and the whole run's hours."""
    step = run.stages[-1].step
    return {"training_step_s": step.time_s, "training_images_per_s": step.images_per_s * run.devices,
            "training_hours": run.hours}


# ---- the report of a run ----

def run_link(device: Device, devices: int, hosts: int = 1, network_gbs: float | None = None,
             link_gbs: float | None = None) -> Link | None:
    """The link a ring all-reduce crosses: `link_gbs` (GB/s one way) or the device's own (device_link); over
    several hosts, the slower of it and the inter-host network (`network_gbs` per device, one way)."""
    link = Link(link_gbs * 1e9, "given", "--link-gbs") if link_gbs is not None else None
    if hosts > 1:
        if network_gbs is None:
            raise EffplanError("--hosts > 1 needs --network-gbs (the inter-host bandwidth per device, one way)")
        if devices % hosts:
            raise EffplanError(f"--devices {devices} does not split evenly over {hosts} hosts")
        inside = link or device_link(device)
        network = Link(network_gbs * 1e9, "network", "--network-gbs", inside.latency_s if inside else 0.0)
        link = network if inside is None or network.bytes_per_s <= inside.bytes_per_s else inside
    return link


def stage_row(stage: Stage, total_s: float) -> dict:
    """One stage of a run as the report's row."""
    s = stage.step
    return {"resolution": stage.resolution, "epochs": stage.epochs, "batch": stage.batch,
            "global_batch": stage.global_batch, "largest_batch": stage.largest_batch,
            "fits": stage.batch <= stage.largest_batch, "steps_per_epoch": stage.steps_per_epoch,
            "forward_s": s.forward_s, "backward_s": s.backward_s, "recompute_s": s.recompute_s,
            "optimizer_s": s.optimizer_s, "allreduce_s": s.allreduce_s, "communication_s": s.communication_s,
            "step_s": s.time_s, "images_per_s_per_device": s.images_per_s,
            "images_per_s": s.images_per_s * s.devices, "speedup": s.speedup,
            "step_band": describe_band(s.time_s, s.runtime.name, "training", stage.batch),
            "bound": "input" if s.input_bound else step_bound([*s.forward, *s.recompute, *s.backward, *s.update]),
            "epoch_s": stage.steps_per_epoch * s.time_s,
            "seconds": stage.seconds, "hours": stage.seconds / 3600,
            "share": stage.seconds / total_s if total_s else 0.0, "memory_bytes": s.memory_bytes,
            "kernels": {"forward": len(s.forward), "backward": len(s.backward), "recompute": len(s.recompute)}}


def conventions(step: Step, devices: int) -> dict:
    """What a run's figures count and leave out, in words (each rule in the module's docstring)."""
    rt = step.runtime
    half = {"mixed": f"{step.dtype} arithmetic and activations, fp32 master weights, gradients and optimizer state"}
    return {
        "runtime": rt.name,
        "forward": f"the kernels roofline --runtime {rt.name} runs ({rt.description}), plus a "
                   "BatchNormalization statistics pass per BN",
        "backward": ("one kernel per op" if not (rt.fusion and rt.pointwise_chains) else
                     "one kernel per op, chains of elementwise gradients fused into one kernel (as the runtime "
                     "fuses the forward; conv gradients unfused)")
                    + ": a conv's input and weight gradients each cost the "
                    "forward's MACs on its unit (depthwise on the vector unit; matrix work padded to the tile "
                    "where the runtime pads); other ops memory-bound over their "
                    "saved tensors, output gradient and input gradients; fan-out gradients summed",
        "optimizer": "one memory-bound pass over params and optimizer state (foreach/fused kernels)",
        "host": rt.host_note(step.device),
        "precision": half.get(step.precision, f"{step.precision} throughout"),
        "communication": (f"ring all-reduce of the gradients, 2(N-1)/N x gradient bytes at the link's bus bandwidth "
                          f"plus its latency per call; {rt.allreduce}"
                          + (" (DDP buckets, 1 MiB then 25 MiB, each all-reduced once the backward fills it; what "
                             "ends after the backward is exposed)" if rt.allreduce == "bucketed" else "")
                          + f": {rt.training_source}"
                          + (f"; plus {rt.data_parallel_overhead(step.device) * 1e3:.3g} ms a step while the "
                             f"processes meet ([training] data_parallel_step_s, fitted: see the runtime file)"
                             if rt.data_parallel_step_s else "")
                          + f"; speed-up over one device {step.speedup:.2f} of {devices}")
        if devices > 1 else "one device: none",
        "batch": "per device; global = per device x devices; steps per epoch = ceil(dataset / global batch)",
        "fits": f"largest per-device batch whose training step fits the device's memory less a {DEFAULT_RESERVE} "
                "reserve (effplan fit --train)",
        "estimate": "roofline estimates (per kernel the longer of compute and memory time, in one stream with the "
                    "host's launches), not measurements, each with the band that held on check measurements; "
                    + (f"input pipeline capped at {step.input_rate:,.0f} images/s over all devices"
                       if step.input_rate else "input pipeline not modelled (excluded: --input-rate, or the device file's [host] "
                       "input_rate, caps it)")
                    + "; loss and evaluation left out",
    }


def training_report(run: Run, described: dict, *, hosts: int = 1, progressive=None) -> dict:
    """The dict `effplan train` renders (and writes as JSON): the run's setup, conventions, a row per stage
    and the totals; `described` names the design (render.report.describe)."""
    first = run.stages[0].step
    rows = [stage_row(s, run.seconds) for s in run.stages]
    return {**described, "device": first.device.name, "devices": run.devices, "hosts": hosts,
            "runtime": first.runtime.name, "precision": first.precision, "dtype": first.dtype,
            "optimizer": first.optimizer, "checkpoint": first.checkpoint, "epochs": sum(s.epochs for s in run.stages),
            "dataset_size": run.dataset_size,
            "progressive": None if progressive is None else dict(zip(("min", "max", "stages"), progressive)),
            "params": first.params, "gradient_bytes": first.gradient_bytes,
            "link": None if first.link is None else {"kind": first.link.kind, "bytes_per_s": first.link.bytes_per_s,
                                                      "source": first.link.source},
            "conventions": conventions(first, run.devices), "stages": rows,
            "totals": {"seconds": run.seconds, "hours": run.hours, "device_hours": run.hours * run.devices,
                       "price_per_device_hour": run.price_per_hour, "cost": run.cost}}
