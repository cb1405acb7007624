"""The two ceilings every kernel is measured against, measured in the same run on the same machine:
memory bandwidth (a large device-to-device copy, counting bytes read plus bytes written) and
float32 matrix throughput (a large SGEMM through the vendor's BLAS). A ceiling is the best the
machine showed: the fastest of the timed batches (GPU) or calls (CPU), where kernels report their
median, so a share of a ceiling errs low rather than high.

GPU: cudaMemcpy device to device of 1 GiB, and cuBLAS SGEMM through cupy.matmul at 8192³ on random
data (drawn on the host: no cuRAND needed) with TF32 off (CuPy uses TF32 only when CUPY_TF32=1; the
run refuses that setting, since the ceiling would then not be float32). CPU: NumPy copyto of
256 MiB and np.matmul (the BLAS NumPy was built with) at 2048³, for the NumPy reference's own
roofline.

Each ceiling is measured on its own: one that fails (a library missing on the machine, say) is
None, with "FAILED: <error>" as its method, and the benchmark goes on without the rates it gives.
"""

from __future__ import annotations

import os
from dataclasses import asdict, dataclass

import numpy as np

from benchmarks.timer import time_gpu, time_host


@dataclass(frozen=True)
class Ceilings:
    device: str  # "gpu" or "cpu"
    copy_bytes_per_s: float | None  # None: the measurement failed, and copy_method says how
    sgemm_flops_per_s: float | None
    copy_method: str
    sgemm_method: str

    def as_dict(self) -> dict:
        return asdict(self)


def describe(ceilings: dict) -> str:
    """'copy 4,300 GB/s (method); SGEMM 51,000 GFLOP/s (method)', a failed one as 'copy FAILED: ...'."""
    def one(name, rate, unit, method):
        return f"{name} {method}" if rate is None else f"{name} {rate / 1e9:,.0f} {unit} ({method})"

    return "; ".join([one("copy", ceilings["copy_bytes_per_s"], "GB/s", ceilings["copy_method"]),
                      one("SGEMM", ceilings["sgemm_flops_per_s"], "GFLOP/s", ceilings["sgemm_method"])])


class Tf32Enabled(RuntimeError):
    """CUPY_TF32=1 would make the SGEMM ceiling and the cuBLAS baselines TF32, not float32."""


def require_float32_cupy() -> None:
    if os.environ.get("CUPY_TF32", "0") not in ("", "0"):
        raise Tf32Enabled("CUPY_TF32 is set: cuBLAS would use TF32 tensor cores, so its numbers would not be a "
                          "float32 baseline; unset CUPY_TF32 (or set it to 0) and run again")


def guarded(measure) -> tuple[float | None, str]:
    """(rate, method) from measure(), or (None, 'FAILED: <error>') when it raises."""
    try:
        return measure()
    except Tf32Enabled:
        raise
    except Exception as error:  # a missing library or a device fault costs this ceiling, not the run
        return None, f"FAILED: {type(error).__name__}: {error}".splitlines()[0]


def measure_gpu(copy_bytes: int = 1 << 30, sgemm_size: int = 8192) -> Ceilings:
    require_float32_cupy()
    copy = guarded(lambda: _gpu_copy(copy_bytes))
    sgemm = guarded(lambda: _gpu_sgemm(sgemm_size))
    return Ceilings("gpu", copy[0], sgemm[0], copy[1], sgemm[1])


def _gpu_copy(copy_bytes: int) -> tuple[float, str]:
    import cupy

    count = copy_bytes // 4
    # A copy's speed does not depend on the values copied.
    sources = [cupy.full(count, 1.0 + index, dtype=cupy.float32) for index in range(2)]
    targets = [cupy.empty_like(source) for source in sources]

    def copy(pair):
        source, target = pair
        target.data.copy_from_device_async(source.data, source.nbytes)

    copy_time = time_gpu(copy, list(zip(sources, targets, strict=True)), batch_seconds=5e-3, batches=5)
    method = f"cudaMemcpy device to device, {copy_bytes >> 20} MiB, (read + write) / time"
    return 2 * copy_bytes / copy_time.best_seconds, method


def _gpu_sgemm(sgemm_size: int) -> tuple[float, str]:
    import cupy

    rng = np.random.default_rng(1)
    a = cupy.asarray(rng.standard_normal((sgemm_size, sgemm_size), dtype=np.float32))
    b = cupy.asarray(rng.standard_normal((sgemm_size, sgemm_size), dtype=np.float32))
    c = cupy.empty_like(a)
    gemm_time = time_gpu(lambda operands: cupy.matmul(*operands, out=c), [(a, b), (b, a)], batch_seconds=0.05,
                         batches=5, warmup=1)
    method = f"cuBLAS SGEMM (cupy.matmul, TF32 off), {sgemm_size}³ on random data"
    return 2 * sgemm_size**3 / gemm_time.best_seconds, method


def measure_cpu(copy_bytes: int = 256 << 20, sgemm_size: int = 2048) -> Ceilings:
    rng = np.random.default_rng(1)

    def copy_rate():
        source = rng.standard_normal(copy_bytes // 4, dtype=np.float32)
        target = np.empty_like(source)
        copy_time = time_host(lambda _: np.copyto(target, source), [None], min_seconds=0.5, min_repeats=5)
        return 2 * copy_bytes / copy_time.best_seconds, f"numpy.copyto, {copy_bytes >> 20} MiB, (read + write) / time"

    def sgemm_rate():
        a = rng.standard_normal((sgemm_size, sgemm_size), dtype=np.float32)
        b = rng.standard_normal((sgemm_size, sgemm_size), dtype=np.float32)
        gemm_time = time_host(lambda _: np.matmul(a, b), [None], min_seconds=1.0, min_repeats=5)
        return 2 * sgemm_size**3 / gemm_time.best_seconds, f"numpy.matmul float32 (NumPy's BLAS), {sgemm_size}³"

    copy, sgemm = guarded(copy_rate), guarded(sgemm_rate)
    return Ceilings("cpu", copy[0], sgemm[0], copy[1], sgemm[1])
