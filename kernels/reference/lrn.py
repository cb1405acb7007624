"""Local response normalization across channels, in the paper's form (alpha is not divided by size).

    scale[n,c,h,w] = k + alpha · Σ_{c' ∈ [c − size//2, c + size//2] ∩ [0, C)} x[n,c',h,w]²
    y = x · scale^−beta

Backward: ∂y[c']/∂x[c] = δ(c, c')·scale[c']^−beta − 2·alpha·beta·x[c]·x[c']·scale[c']^(−beta−1) for
c in the window of c'. The window is symmetric, so c is in the window of c' exactly when c' is in
the window of c, and
    dx[c] = dy[c]·scale[c]^−beta − 2·alpha·beta·x[c] · Σ_{c' in window(c)} dy[c']·y[c']/scale[c'].
"""

from __future__ import annotations

from kernels.contract import NUMPY_SPEC, check_lrn_backward, check_lrn_forward


def _channel_window_sum(a, size):
    """out[:, c] = Σ a[:, c'] over c' in [c − size//2, c + size//2] ∩ [0, C): shifted adds, no cumsum
    (a running sum would lose the small terms to cancellation in float32)."""
    out = a.copy()
    for shift in range(1, size // 2 + 1):
        out[:, shift:] += a[:, :-shift]
        out[:, :-shift] += a[:, shift:]
    return out


def lrn_forward(x, size=5, alpha=1e-4, beta=0.75, k=2.0):
    """Returns (y, scale)."""
    size, alpha, beta, k = check_lrn_forward(NUMPY_SPEC, x, size, alpha, beta, k)
    scale = k + alpha * _channel_window_sum(x * x, size)
    return x * scale ** (-beta), scale


def lrn_backward(dy, x, y, scale, size=5, alpha=1e-4, beta=0.75, k=2.0):
    size, alpha, beta, k = check_lrn_backward(NUMPY_SPEC, dy, x, y, scale, size, alpha, beta, k)
    spread = _channel_window_sum(dy * y / scale, size)
    return dy * scale ** (-beta) - (2.0 * alpha * beta) * x * spread
