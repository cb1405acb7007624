"""softmax_xent_forward and softmax_xent_backward of the `cuda` face: launchers for softmax_xent.cu.

    softmax_xent_forward    v1 one block per row, shared-memory tree reductions
                            v2 warp-shuffle reductions (promoted)
                            both then average the per-row losses in one block, in a fixed order
    softmax_xent_backward   v1 one thread per element

Label values are not checked (that would synchronize the host): a label outside [0, K) makes its
row's loss and gradient NaN instead of reading out of bounds.
"""

from __future__ import annotations

import numpy as np

from kernels import geometry
from kernels.contract import check_softmax_xent_backward, check_softmax_xent_forward
from kernels.cuda.runtime import backend, declare, empty, i32, launch, require_int32_indexable, spec

SOURCE = "softmax_xent.cu"
THREADS = geometry.REDUCE_THREADS
FORWARD = {
    1: declare("softmax_xent_forward", 1, "rows", SOURCE, f"softmax_xent_forward_tree<{THREADS}>"),
    2: declare("softmax_xent_forward", 2, "rows", SOURCE, f"softmax_xent_forward_shuffle<{THREADS}>"),
}
MEAN = declare("softmax_xent_forward", 1, "mean", SOURCE, f"softmax_xent_mean<{THREADS}>")  # every version
BACKWARD = declare("softmax_xent_backward", 1, "main", SOURCE, "softmax_xent_backward_v1")


def _require_rows_and_classes(name, array):
    if 0 in array.shape:
        raise ValueError(f"{name}: expected at least one row and one class, got shape {tuple(array.shape)}")


def _int32_labels(labels):
    return backend().xp.ascontiguousarray(labels, dtype=np.int32)


def _forward(version: int):
    def softmax_xent_forward(logits, labels):
        """Returns (loss as a 0-d float32 array, probs)."""
        check_softmax_xent_forward(spec(), logits, labels)
        _require_rows_and_classes("logits", logits)
        require_int32_indexable(logits=logits)
        rows, classes = logits.shape
        probs = empty(logits.shape)
        row_loss = empty((rows,), np.float64)
        loss = empty((), np.float32)
        launch(FORWARD[version], *geometry.grid_rows(rows, THREADS),
               (logits, _int32_labels(labels), probs, row_loss, i32(classes)))
        launch(MEAN, (1,), (THREADS,), (row_loss, loss, i32(rows)))
        return loss, probs

    softmax_xent_forward.__name__ = softmax_xent_forward.__qualname__ = f"softmax_xent_forward_v{version}"
    return softmax_xent_forward


def softmax_xent_backward_v1(probs, labels):
    """dlogits = (probs − onehot(labels)) / N."""
    check_softmax_xent_backward(spec(), probs, labels)
    _require_rows_and_classes("probs", probs)
    require_int32_indexable(probs=probs)
    rows, classes = probs.shape
    dlogits = empty(probs.shape)
    launch(BACKWARD, *geometry.grid_1d(probs.size), (probs, _int32_labels(labels), dlogits, i32(rows), i32(classes)))
    return dlogits


VERSIONS = {
    "softmax_xent_forward": {v: _forward(v) for v in (1, 2)},
    "softmax_xent_backward": {1: softmax_xent_backward_v1},
}
