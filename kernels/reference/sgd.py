"""The SGD update with momentum and weight decay, in place, in the paper's form."""

from __future__ import annotations

from kernels.contract import NUMPY_SPEC, check_sgd_update


def sgd_update(w, grad, velocity, lr, momentum=0.9, weight_decay=5e-4):
    """In place, the paper's rule: v ← momentum·v − weight_decay·lr·w − lr·grad; w ← w + v."""
    lr, momentum, weight_decay = check_sgd_update(NUMPY_SPEC, w, grad, velocity, lr, momentum, weight_decay)
    velocity *= momentum
    velocity -= (weight_decay * lr) * w
    velocity -= lr * grad
    w += velocity
