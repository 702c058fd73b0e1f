"""What this process may still use: memory (before allocating gigabytes) and disk (before writing them)."""
from __future__ import annotations

import shutil


def memory_left() -> int | None:
    """Bytes this process may still allocate: the least of the system's available memory, the address
    space and data limits (ulimit -v, -d) less what is mapped, and a cgroup's limit less its usage.
    None when nothing says."""
    found = []
    status = _fields("/proc/self/status")
    meminfo = _fields("/proc/meminfo")
    if "MemAvailable" in meminfo:
        found.append(meminfo["MemAvailable"])
    try:
        import resource

        for limit, used in ((resource.RLIMIT_AS, "VmSize"), (resource.RLIMIT_DATA, "VmData")):
            soft, _ = resource.getrlimit(limit)
            if soft != resource.RLIM_INFINITY and used in status:
                found.append(max(soft - status[used], 0))
    except (ImportError, OSError, ValueError):
        pass
    try:
        with open("/sys/fs/cgroup/memory.max") as fh:
            top = fh.read().strip()
        with open("/sys/fs/cgroup/memory.current") as fh:
            if top.isdigit():
                found.append(max(int(top) - int(fh.read().strip()), 0))
    except (OSError, ValueError):
        pass
    return min(found) if found else None


def disk_free(folder: str) -> int | None:
    try:
        return shutil.disk_usage(folder).free
    except OSError:
        return None


def _fields(path: str) -> dict[str, int]:
    """'Key:   123 kB' lines as {Key: bytes}."""
    out = {}
    try:
        with open(path) as fh:
            for line in fh:
                key, _, rest = line.partition(":")
                parts = rest.split()
                if len(parts) == 2 and parts[1] == "kB" and parts[0].isdigit():
                    out[key] = int(parts[0]) * 1024
    except OSError:
        pass
    return out
