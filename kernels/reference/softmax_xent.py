"""Mean softmax cross-entropy over a batch of logits (N, K) and integer labels (N,)."""

from __future__ import annotations

import numpy as np

from kernels.contract import (
    NUMPY_SPEC,
    check_label_range,
    check_softmax_xent_backward,
    check_softmax_xent_forward,
)


def softmax_xent_forward(logits, labels):
    """Returns (loss, probs): loss = mean_n −log softmax(logits[n])[labels[n]] as a 0-d array.

    Subtracting the row maximum before exp keeps every exponent <= 0, so large logits do not
    overflow; the log of the label's probability is formed from the shifted logit directly.
    """
    check_softmax_xent_forward(NUMPY_SPEC, logits, labels)
    n, classes = logits.shape
    check_label_range(int(labels.min()), int(labels.max()), classes)
    shifted = logits - logits.max(axis=1, keepdims=True)
    exp = np.exp(shifted)
    row_sums = exp.sum(axis=1, keepdims=True)
    probs = exp / row_sums
    log_likelihood = shifted[np.arange(n), labels].astype(np.float64) - np.log(row_sums[:, 0].astype(np.float64))
    return np.asarray(-log_likelihood.mean(), dtype=logits.dtype), probs


def softmax_xent_backward(probs, labels):
    """dlogits = (probs − onehot(labels)) / N."""
    check_softmax_xent_backward(NUMPY_SPEC, probs, labels)
    n, classes = probs.shape
    check_label_range(int(labels.min()), int(labels.max()), classes)
    dlogits = probs.copy()
    dlogits[np.arange(n), labels] -= 1
    dlogits /= n
    return dlogits
