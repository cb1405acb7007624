"""Softmax cross-entropy over a batch of logits (N, K) with integer labels (N,).

    v1  forward: one block per row. The block's threads stride over the K columns; a shared-memory
        tree reduction gives the row maximum, a second one the sum of exp(logit − max); each thread
        then writes its columns' probabilities, and thread 0 the row's loss into a per-row buffer.
        A second launch of one block adds the N row losses with the same tree reduction and
        divides by N. No float atomics: the order of every addition is fixed by the block size,
        so the loss is the same bit for bit from run to run.
        backward: one thread per element, dlogits = (probs − onehot(label))/N.

Labels reach the kernels as int32 (the launcher converts other integer dtypes on the device).
On a GPU their values are not checked: reading them back would make the host wait for the GPU.
"""

from __future__ import annotations

import math

import numpy as np

from kernels.contract import check_softmax_xent_backward, check_softmax_xent_forward
from kernels.geometry import REDUCE_THREADS, grid_1d, grid_rows
from kernels.numba.compiler import cuda, float32
from kernels.numba.reduce import block_reduce
from kernels.numba.runtime import SPEC, check_labels, declare, empty, launch

MATRIX = "float32[:, ::1]"
LABELS = "int32[::1]"


@cuda.jit
def softmax_xent_rows_kernel(logits, labels, probs, row_loss):
    """probs[n] = softmax(logits[n]); row_loss[n] = log Σ_k exp(logits[n,k] − m) − (logits[n,label] − m),
    m = max_k logits[n,k], so every exponent is <= 0 and none overflows.

    logits (N, K), labels (N,) int32 in [0, K); probs (N, K) out, row_loss (N,) out.
    Block n covers row n; thread t covers columns t, t + blockDim.x, ...
    """
    shared = cuda.shared.array(REDUCE_THREADS, float32)
    n = cuda.blockIdx.x
    tid = cuda.threadIdx.x
    classes = logits.shape[1]
    local_max = float32(-math.inf)
    for k in range(tid, classes, REDUCE_THREADS):
        local_max = max(local_max, logits[n, k])
    row_max = block_reduce(shared, local_max, True)
    local_sum = float32(0.0)
    for k in range(tid, classes, REDUCE_THREADS):
        local_sum += math.exp(logits[n, k] - row_max)
    row_sum = block_reduce(shared, local_sum, False)
    for k in range(tid, classes, REDUCE_THREADS):
        probs[n, k] = math.exp(logits[n, k] - row_max) / row_sum
    if tid == 0:
        row_loss[n] = math.log(row_sum) - (logits[n, labels[n]] - row_max)


@cuda.jit
def mean_kernel(values, mean):
    """mean[0] = Σ values / len(values), added in a fixed order.

    values (N,); mean (1,) out. One block; thread t adds values t, t + blockDim.x, ..., then a tree.
    """
    shared = cuda.shared.array(REDUCE_THREADS, float32)
    tid = cuda.threadIdx.x
    count = values.size
    local_sum = float32(0.0)
    for i in range(tid, count, REDUCE_THREADS):
        local_sum += values[i]
    total = block_reduce(shared, local_sum, False)
    if tid == 0:
        mean[0] = total / float32(count)


@cuda.jit
def softmax_xent_backward_kernel(probs, labels, dlogits):
    """dlogits[n,k] = (probs[n,k] − [k == labels[n]]) / N.

    probs (N, K), labels (N,) int32; dlogits (N, K) out. Thread t covers element (t // K, t % K).
    """
    t = cuda.grid(1)
    rows, classes = probs.shape
    if t >= rows * classes:
        return
    n = t // classes
    k = t % classes
    value = probs[n, k]
    if k == labels[n]:
        value -= float32(1.0)
    dlogits[n, k] = value / float32(rows)


def _int32_labels(labels):
    return labels if labels.dtype == np.int32 else labels.astype(np.int32)


def softmax_xent_forward_v1(logits, labels):
    check_softmax_xent_forward(SPEC, logits, labels)
    rows, classes = logits.shape
    check_labels(labels, classes)
    probs = empty(logits.shape)
    row_loss = empty((rows,))
    loss = empty((1,))
    grid, block = grid_rows(rows)
    launch(softmax_xent_rows_kernel, grid, block, logits, _int32_labels(labels), probs, row_loss)
    grid, block = grid_rows(1)
    launch(mean_kernel, grid, block, row_loss, loss)
    return loss.reshape(()), probs


def softmax_xent_backward_v1(probs, labels):
    check_softmax_xent_backward(SPEC, probs, labels)
    check_labels(labels, probs.shape[1])
    dlogits = empty(probs.shape)
    grid, block = grid_1d(probs.size)
    launch(softmax_xent_backward_kernel, grid, block, probs, _int32_labels(labels), dlogits)
    return dlogits


VERSIONS = {
    "softmax_xent_forward": {1: softmax_xent_forward_v1},
    "softmax_xent_backward": {1: softmax_xent_backward_v1},
}

declare("softmax_xent_forward", 1, softmax_xent_rows_kernel,
        f"void({MATRIX}, {LABELS}, {MATRIX}, float32[::1])")
declare("softmax_xent_forward", 1, mean_kernel, "void(float32[::1], float32[::1])")
declare("softmax_xent_backward", 1, softmax_xent_backward_kernel, f"void({MATRIX}, {LABELS}, {MATRIX})")
