"""What a benchmark ran on: date, commit, machine, GPU and library versions. Every table in
benchmarks/RESULTS.md carries these."""

from __future__ import annotations

import datetime
import os
import platform
import subprocess
from pathlib import Path

REPOSITORY = Path(__file__).resolve().parents[1]  # benchmarks/ is one level under the checkout


def commit() -> str:
    """The checkout's commit (with '+dirty' when tracked files differ), or 'unknown' outside git."""
    try:
        head = subprocess.run(["git", "rev-parse", "--short=12", "HEAD"], cwd=REPOSITORY, capture_output=True,
                              text=True, timeout=10, check=True).stdout.strip()
        dirty = subprocess.run(["git", "status", "--porcelain", "--untracked-files=no"], cwd=REPOSITORY,
                               capture_output=True, text=True, timeout=10, check=True).stdout.strip()
    except (OSError, subprocess.SubprocessError):
        return os.environ.get("ALEXNET_CUDA_COMMIT", "unknown")
    return head + ("+dirty" if dirty else "")


def cpu_name() -> str:
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or platform.machine()


def describe(gpu: bool) -> dict:
    """A dict of facts about this run; `gpu` adds the device's name, SMs, L2 and library versions."""
    import numpy

    info = {
        "date": datetime.datetime.now(datetime.timezone.utc).strftime("%Y-%m-%d %H:%M UTC"),
        "commit": commit(),
        "host": platform.node(),
        "cpu": f"{cpu_name()}, {os.cpu_count()} logical cores",
        "python": platform.python_version(),
        "numpy": numpy.__version__,
    }
    if gpu:
        info.update(gpu_properties())
    return info


def gpu_properties() -> dict:
    import cupy

    device = cupy.cuda.Device()
    properties = cupy.cuda.runtime.getDeviceProperties(device.id)
    name = properties["name"]
    return {
        "gpu": name.decode() if isinstance(name, bytes) else str(name),
        "gpu_sms": int(properties["multiProcessorCount"]),
        "gpu_l2_bytes": int(properties["l2CacheSize"]),
        "gpu_memory_bytes": int(properties["totalGlobalMem"]),
        "compute_capability": f"{properties['major']}.{properties['minor']}",
        "cuda_driver": cupy.cuda.runtime.driverGetVersion(),
        "cuda_runtime": cupy.cuda.runtime.runtimeGetVersion(),
        "cupy": cupy.__version__,
    }


def l2_bytes(default: int = 60 << 20) -> int:
    """The GPU's L2 size (60 MB on an H200), or `default` where it cannot be read."""
    try:
        return gpu_properties()["gpu_l2_bytes"] or default
    except Exception:  # any failure to read properties leaves the documented default
        return default
