"""Vendor baselines on the same shapes and the same device inputs as our kernels, in the same run.

- linear: cuBLAS through cupy.matmul (forward x·wᵀ; backward dy·w, dyᵀ·x and the column sums of
  dy). The bias add of the forward is left out, so cuBLAS is timed on the GEMM alone: a strict
  baseline.
- convolution: cuDNN through PyTorch (torch.nn.functional.conv2d; backward
  aten.convolution_backward computing dx, dw and db in one call), cudnn.benchmark on so that cuDNN
  picks its fastest algorithm for each shape, TF32 off so that the comparison is float32.
- max pooling, ReLU, dropout: PyTorch's own CUDA kernels (max_pool2d with indices and its backward,
  relu and threshold_backward, native_dropout and its backward). PyTorch draws dropout's random
  numbers with its own generator and stores a bool mask, which is the same traffic as ours.
- LRN: PyTorch's local_response_norm (with alpha·size, since PyTorch divides alpha by size), which
  is a composite of several kernels, and its autograd backward.
- softmax cross-entropy and SGD: no single vendor call computes the same thing; their floor is the
  copy bandwidth alone.

PyTorch is optional: where it cannot be imported or sees no GPU, the rows say so. CuPy arrays reach
PyTorch without a copy through __cuda_array_interface__; both libraries work on the legacy default
stream, where the timer's events are recorded.
"""

from __future__ import annotations

import functools
from dataclasses import dataclass


@dataclass(frozen=True)
class Baseline:
    name: str
    prepare: object  # prepare(sets) -> (run, vendor_sets): run(vendor_set) performs one call


@functools.cache
def torch_status() -> tuple[object | None, str]:
    """(torch module or None, a sentence on why not), configured for a float32 comparison."""
    try:
        import torch
    except ImportError as error:
        return None, f"PyTorch is not importable ({error}); no cuDNN baseline"
    if not torch.cuda.is_available():
        return None, "PyTorch sees no CUDA device; no cuDNN baseline"
    torch.backends.cudnn.allow_tf32 = False
    torch.backends.cuda.matmul.allow_tf32 = False
    torch.backends.cudnn.benchmark = True
    return torch, f"PyTorch {torch.__version__}, cuDNN {torch.backends.cudnn.version()}, TF32 off"


def _tensor(torch, array):
    return torch.as_tensor(array, device="cuda")


def baseline(case) -> Baseline | None:
    """The vendor baseline of `case`, or None where there is none (or PyTorch is missing)."""
    op = case.op
    if op == "linear_forward":
        return Baseline("cuBLAS", _linear_forward)
    if op == "linear_backward":
        return Baseline("cuBLAS", _linear_backward)
    torch, _ = torch_status()
    if torch is None:
        return None
    makers = {
        "conv2d_forward": ("cuDNN", _conv_forward),
        "conv2d_backward": ("cuDNN", _conv_backward),
        "maxpool_forward": ("PyTorch", _pool_forward),
        "maxpool_backward": ("PyTorch", _pool_backward),
        "relu_forward": ("PyTorch", _relu_forward),
        "relu_backward": ("PyTorch", _relu_backward),
        "dropout_forward": ("PyTorch", _dropout_forward),
        "dropout_backward": ("PyTorch", _dropout_backward),
        "lrn_forward": ("PyTorch (composite)", _lrn_forward),
        "lrn_backward": ("PyTorch autograd", _lrn_backward),
    }
    if op not in makers:
        return None
    name, maker = makers[op]
    return Baseline(name, functools.partial(maker, torch=torch, case=case))


def _linear_forward(sets):
    import cupy

    return (lambda s: cupy.matmul(s["x"], s["w"].T)), sets


def _linear_backward(sets):
    import cupy

    def run(s):
        return cupy.matmul(s["dy"], s["w"]), cupy.matmul(s["dy"].T, s["x"]), s["dy"].sum(axis=0)

    return run, sets


def _views(torch, sets, names):
    return [{name: _tensor(torch, s[name]) for name in names} for s in sets]


def _conv_forward(sets, torch, case):
    conv = torch.nn.functional.conv2d
    stride, pad, groups = case["stride"], case["pad"], case["groups"]
    return (lambda s: conv(s["x"], s["w"], s["b"], stride, pad, 1, groups)), _views(torch, sets, ("x", "w", "b"))


def _conv_backward(sets, torch, case):
    stride, pad, groups = [case["stride"]] * 2, [case["pad"]] * 2, case["groups"]
    bias_sizes = [case["w"][0]]
    backward = torch.ops.aten.convolution_backward

    def run(s):
        return backward(s["dy"], s["x"], s["w"], bias_sizes, stride, pad, [1, 1], False, [0, 0], groups,
                        [True, True, True])

    return run, _views(torch, sets, ("dy", "x", "w"))


def _pool_forward(sets, torch, case):
    pool = torch.nn.functional.max_pool2d
    kernel, stride = case["kernel"], case["stride"]
    return (lambda s: pool(s["x"], kernel, stride, return_indices=True)), _views(torch, sets, ("x",))


def _pool_backward(sets, torch, case):
    kernel, stride = [case["kernel"]] * 2, [case["stride"]] * 2
    vendor_sets = []
    for s in sets:
        x = torch.randn(case["x"], device="cuda")
        _, indices = torch.nn.functional.max_pool2d(x, kernel, stride, return_indices=True)
        vendor_sets.append({"dy": _tensor(torch, s["dy"]), "x": x, "indices": indices})
    backward = torch.ops.aten.max_pool2d_with_indices_backward

    def run(s):
        return backward(s["dy"], s["x"], kernel, stride, [0, 0], [1, 1], False, s["indices"])

    return run, vendor_sets


def _relu_forward(sets, torch, case):
    return (lambda s: torch.relu(s["x"])), _views(torch, sets, ("x",))


def _relu_backward(sets, torch, case):
    backward = torch.ops.aten.threshold_backward
    return (lambda s: backward(s["dy"], s["y"], 0)), _views(torch, sets, ("dy", "y"))


def _dropout_forward(sets, torch, case):
    dropout, p = torch.ops.aten.native_dropout, case["p"]
    return (lambda s: dropout(s["x"], p, True)), _views(torch, sets, ("x",))


def _dropout_backward(sets, torch, case):
    backward, scale = torch.ops.aten.native_dropout_backward, 1.0 / (1.0 - case["p"])
    vendor_sets = [{"dy": _tensor(torch, s["dy"]), "mask": _tensor(torch, s["mask"]).bool()} for s in sets]
    return (lambda s: backward(s["dy"], s["mask"], scale)), vendor_sets


def _lrn_forward(sets, torch, case):
    lrn = torch.nn.functional.local_response_norm
    size, alpha, beta, k = case["size"], case["alpha"], case["beta"], case["k"]
    return (lambda s: lrn(s["x"], size, alpha * size, beta, k)), _views(torch, sets, ("x",))


def _lrn_backward(sets, torch, case):
    lrn = torch.nn.functional.local_response_norm
    size, alpha, beta, k = case["size"], case["alpha"], case["beta"], case["k"]
    vendor_sets = []
    for s in sets:
        x = _tensor(torch, s["x"]).detach().clone().requires_grad_(True)
        vendor_sets.append({"x": x, "y": lrn(x, size, alpha * size, beta, k), "dy": _tensor(torch, s["dy"])})

    def run(s):
        return torch.autograd.grad(s["y"], s["x"], s["dy"], retain_graph=True)

    return run, vendor_sets
