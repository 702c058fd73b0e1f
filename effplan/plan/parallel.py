"""Data parallelism: the gradient all-reduce of a training step over a ring of devices, as NCCL and DDP run
it (plan/training.py's module docstring says how a step exposes it)."""
from __future__ import annotations

from dataclasses import dataclass

from ..graph.ops import weight_counts
from .hardware import Device

DDP_BUCKET_BYTES = 25 << 20  # torch.nn.parallel.DistributedDataParallel's bucket_cap_mb=25
DDP_FIRST_BUCKET_BYTES = 1 << 20  # DDP's first bucket (dist._DEFAULT_FIRST_BUCKET_BYTES): small, so it starts early


@dataclass(frozen=True)
class Link:
    bytes_per_s: float  # the all-reduce's bus bandwidth per device (NCCL's busBw): one way over the ring
    kind: str  # nvlink, pcie, ici, network, none
    source: str
    latency_s: float = 0.0  # per all-reduce call

def device_link(device: Device) -> Link | None:
    """The slowest link of a ring of these devices in one host (one way, per device), from the device
    file's [interconnect] (bytes/s, plan/hardware.py), or None."""
    x = device.interconnect
    source = device.sources.get("interconnect", "")
    latency = x.get("allreduce_latency_us", 0.0)
    if "allreduce_busbw_gbs" in x:  # what NCCL's all-reduce reaches in a node of these devices (nccl-tests busbw)
        return Link(x["allreduce_busbw_gbs"], "nvlink" if "nvlink_gbs" in x else "pcie", source, latency)
    if "nvlink_gbs" in x:  # total bidirectional over all links; NCCL's rings use every link, each way
        return Link(x["nvlink_gbs"] / 2, "nvlink", source)
    if "ici_link_gbs" in x:  # a ring along one torus axis: one ICI link a hop, one way
        return Link(x["ici_link_gbs"], "ici", source)
    if "pcie_gbs" in x:  # no NVLink: peer traffic crosses PCIe, half of its bidirectional figure each way
        return Link(x["pcie_gbs"] / 2, "pcie", source)
    return None


def ring_allreduce_s(gradient_bytes: int, devices: int, link_bytes_per_s: float) -> float:
    """A ring all-reduce: every device sends (and receives) 2 (N - 1) / N of the gradients."""
    if devices <= 1:
        return 0.0
    return 2 * (devices - 1) / devices * gradient_bytes / link_bytes_per_s


def bucketed_allreduce_s(backward: list, gradient_of: dict, devices: int, link: Link) -> tuple[float, float]:
    """(the whole all-reduce, the part the step waits for) as DDP runs it: gradients fill buckets in the order the
    backward writes them (the first bucket 1 MiB, then 25 MiB: torch.nn.parallel.DistributedDataParallel,
    bucket_cap_mb=25 and dist._DEFAULT_FIRST_BUCKET_BYTES); a bucket is all-reduced once it is full (the last
    when the backward ends), one NCCL call after another on the communication stream, each call costing the
    link's latency plus 2 (N - 1) / N of its bytes at the bus bandwidth. `gradient_of`: kernel name -> the
    gradient bytes it completes. What ends after the backward is exposed; at least the last bucket."""
    clock, cap, filled, ready = 0.0, DDP_FIRST_BUCKET_BYTES, 0, []
    for k in backward:
        clock += float(k.time_s)
        filled += gradient_of.get(k.name, 0)
        if filled >= cap:
            ready.append((clock, filled))
            cap, filled = DDP_BUCKET_BYTES, 0
    if filled:
        ready.append((clock, filled))
    end = whole = 0.0
    for when, size in ready:
        call = link.latency_s + ring_allreduce_s(size, devices, link.bytes_per_s)
        whole += call
        end = max(end, when) + call
    return whole, max(end - clock, 0.0)


def gradient_kernels(graph, backward: list, grad_bytes: int) -> dict:
    """Backward kernel name -> the weight-gradient bytes it completes: a conv's or GEMM's #dW, BN's reduction
    (#dreduce) or its one backward kernel (#d, alone or inside a fused kernel's name)."""
    names = {k.name for k in backward}
    parts = {part: k.name for k in backward for part in k.name.split("+")}
    out: dict = {}
    for node in graph.nodes:
        params = weight_counts(graph.nodes[node]["weights"])[0]
        if not params:
            continue
        found = next((parts[n] for n in (f"{node}#dW", f"{node}#dreduce", f"{node}#d") if n in parts), None)
        if found in names:
            out[found] = out.get(found, 0) + params * grad_bytes
    return out
