"""Data-parallel training over several processes: `mpiexec -n R alexnet-cuda train ...`.

Each of the R ranks holds the whole model. Every epoch has one shuffled order (from the seed and
the epoch, as for one process) cut into global batches of --batch-size; each rank trains on its
share of every global batch (loaders.make_loader's `shard`), so the ranks together see the epoch
exactly once and a position (epoch, batch, step) means the same on any number of ranks.

After backward each rank scales its gradients by its share's image count and packs them, with that
count, its loss sum and its top-1 count, into one flat buffer; one all-reduce sums the buffers and
every rank divides by the summed count. The result is the gradient of the mean loss over the global
batch, whatever the shares (uneven, or short of images that failed to decode), so every rank
applies the same SGD update and the weights stay identical.

Besides that one buffer, the ranks agree after every step whether any was asked to stop (a one-int
MPI all-reduce on the host, which never waits for a GPU), so they all stop after the same step.

The all-reduce is MPI's Allreduce on host arrays (the cpu and emu devices) and NCCL on GPUs (CuPy's
bindings, one rank per GPU, on the compute stream, the communicator's id broadcast over MPI).
A process started without mpiexec never imports mpi4py: open_group() returns None and the trainer
runs exactly as it always has.

One difference from a single process remains: a global batch of which no image decodes on any
rank is skipped by one process but is a step for the ranks (a zero gradient; momentum and weight
decay still move the weights), since no rank knows the others' counts before the sum.

A rank that fails calls abort(), which ends every rank (MPI_Abort), so no rank waits forever in a
collective; a rank killed outright is noticed by mpiexec, which ends the others.
"""

from __future__ import annotations

import os
import time

import numpy as np

# Set by the launchers in every process they start: MPICH's and Intel MPI's Hydra (PMI_*), Open MPI
# (OMPI_*), PMIx-based launchers such as Slurm's srun --mpi=pmix (PMIX_RANK).
LAUNCHER_VARIABLES = ("PMI_RANK", "PMI_SIZE", "OMPI_COMM_WORLD_SIZE", "PMIX_RANK")
INSTALL_HINT = 'install the `dist` extra (python -m pip install -e ".[dist]"), which brings mpi4py and MPICH'


class DistributedError(Exception):
    """The group cannot be formed or used; the message says why and what to do."""


def launched_by_mpi() -> bool:
    return any(name in os.environ for name in LAUNCHER_VARIABLES)


def open_group(face, device: str) -> Group | None:
    """The group of ranks this process belongs to, or None when it was not started by mpiexec."""
    if not launched_by_mpi():
        return None
    try:
        from mpi4py import MPI
    except ImportError as error:
        raise DistributedError(f"started by mpiexec, but mpi4py cannot be imported ({error}); {INSTALL_HINT}") \
            from error
    return Group(MPI.COMM_WORLD, face, device)


class Group:
    """The ranks of one training run over an MPI communicator."""

    def __init__(self, comm, face, device: str):
        from mpi4py import MPI

        self.MPI, self.comm, self.face, self.device = MPI, comm, face, device
        self.rank, self.size = comm.Get_rank(), comm.Get_size()
        self.is_root = self.rank == 0
        # One rank per GPU: the ranks on one machine take its GPUs in turn.
        self.local_rank = comm.Split_type(MPI.COMM_TYPE_SHARED).Get_rank()
        if device == "gpu":
            self.reducer = NcclReducer(comm, self.local_rank)
        else:
            self.reducer = MpiReducer(comm)
        # Host time inside the gradient all-reduce, for `bench step --ranks` (CPU ranks: NCCL only queues it).
        self.reduce_seconds = 0.0

    @property
    def shard(self) -> tuple[int, int]:
        return self.rank, self.size

    def sum_step(self, layers, loss, correct, images: int):
        """Sum the step's gradients over the ranks and put the mean over the global batch in every
        layer's `grads`; returns the global (mean loss, top-1 count, images) as face arrays.
        `loss` is the rank's mean over its `images`; with images 0 (a share that failed to decode
        entirely) the rank contributes nothing but takes part."""
        xp = self.face.xp
        grads = [(layer, name, layer.params[name].shape, layer.params[name].size)
                 for layer in layers for name in layer.params]
        buffer = xp.empty(sum(size for *_, size in grads) + 3, dtype=xp.float32)
        weight = np.float32(images)
        position = 0
        for layer, name, _, size in grads:
            part = buffer[position:position + size]
            if images:
                xp.multiply(layer.grads[name].reshape(-1), weight, out=part)
            else:
                part.fill(0)
            position += size
        buffer[-3] = weight
        buffer[-2] = xp.asarray(loss, dtype=xp.float32) * weight
        buffer[-1] = xp.asarray(correct, dtype=xp.float32)
        started = time.perf_counter()
        self.reducer.all_reduce(buffer)
        self.reduce_seconds += time.perf_counter() - started
        # A copy, not views: the read-back keeps these until its next read, and a view would keep the
        # whole buffer (every gradient) alive with them.
        summed_images, summed_loss, summed_correct = buffer[-3:].copy()
        # At least 1: a global batch of which no image decoded gives a zero gradient (module docstring).
        scale = 1.0 / xp.maximum(summed_images, 1.0)
        position = 0
        for layer, name, shape, size in grads:
            layer.grads[name] = (buffer[position:position + size] * scale).reshape(shape)
            position += size
        return summed_loss * scale, summed_correct, summed_images

    def any(self, flag: bool) -> bool:
        """True on every rank when it is True on any (stop requests, agreed between steps)."""
        return bool(self.comm.allreduce(int(bool(flag)), op=self.MPI.MAX))

    def agree_on_signal(self, signum: int | None) -> int:
        """The stop signal any rank received (the highest number where ranks got different ones)."""
        return int(self.comm.allreduce(int(signum or 0), op=self.MPI.MAX))

    def sum_host(self, values) -> np.ndarray:
        """Element-wise sum over the ranks of a small float64 vector (validation counts, skips)."""
        values = np.ascontiguousarray(values, dtype=np.float64)
        self.comm.Allreduce(self.MPI.IN_PLACE, values, op=self.MPI.SUM)
        return values

    def broadcast_arrays(self, arrays: dict[str, np.ndarray]) -> dict[str, np.ndarray]:
        """Rank 0's host arrays on every rank (the weights every rank starts from)."""
        result = {}
        for key in sorted(arrays):
            array = np.ascontiguousarray(arrays[key])
            self.comm.Bcast(array, root=0)
            result[key] = array
        return result

    def abort(self, status: int) -> None:
        """End every rank of the job now (after this rank has said why)."""
        self.comm.Abort(status)


class MpiReducer:
    """Sums a host buffer over the ranks with MPI's Allreduce."""

    name = "MPI Allreduce"

    def __init__(self, comm):
        from mpi4py import MPI

        self.comm, self.MPI = comm, MPI

    def all_reduce(self, buffer) -> None:
        self.comm.Allreduce(self.MPI.IN_PLACE, buffer, op=self.MPI.SUM)


class NcclReducer:
    """Sums a CuPy buffer over the ranks with NCCL, queued on the current (compute) stream, so the
    SGD update that follows waits for it without the host waiting."""

    name = "NCCL all-reduce"

    def __init__(self, comm, local_rank: int):
        import cupy
        from cupy.cuda import nccl

        if not nccl.available:
            raise DistributedError("the gpu device sums gradients with NCCL, which CuPy cannot load here; "
                                   f"{INSTALL_HINT} (it includes nvidia-nccl-cu13)")
        devices = cupy.cuda.runtime.getDeviceCount()
        cupy.cuda.Device(local_rank % devices).use()
        self.cupy, self.nccl = cupy, nccl
        unique_id = nccl.get_unique_id() if comm.Get_rank() == 0 else None
        unique_id = comm.bcast(unique_id, root=0)
        self.communicator = nccl.NcclCommunicator(comm.Get_size(), unique_id, comm.Get_rank())

    def all_reduce(self, buffer) -> None:
        if buffer.dtype != self.cupy.float32 or not buffer.flags.c_contiguous:
            raise TypeError("the NCCL all-reduce takes one C-contiguous float32 buffer")
        stream = self.cupy.cuda.get_current_stream()
        self.communicator.allReduce(buffer.data.ptr, buffer.data.ptr, buffer.size, self.nccl.NCCL_FLOAT32,
                                    self.nccl.NCCL_SUM, stream.ptr)
