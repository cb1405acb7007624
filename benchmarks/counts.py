"""The roofline's two numbers for each op case: floating-point operations, and the fewest bytes the
op must move through device memory (each input read once, each output written once).

A multiply-add counts as two FLOPs. Elementwise ops count the arithmetic they cannot avoid; they
are memory-bound by orders of magnitude either way, so only their bytes set their floor. Dropout's
Philox rounds are integer work and are not counted as FLOPs. Labels are int32 (4 bytes), max-pool
argmax int32, dropout masks uint8 (1 byte).

floor(case) = max(flops / measured SGEMM FLOP/s, bytes / measured copy bandwidth); the larger term
says whether the case is compute- or memory-bound on that machine.
"""

from __future__ import annotations

from dataclasses import dataclass
from math import prod

from benchmarks.cases import output_shape
from benchmarks.shapes import OpCase

FLOAT = 4
INT32 = 4
MASK = 1


@dataclass(frozen=True)
class Counts:
    flops: int
    bytes: int

    def floor_seconds(self, flops_per_s: float, bytes_per_s: float) -> float:
        return max(self.flops / flops_per_s, self.bytes / bytes_per_s)

    def bound(self, flops_per_s: float, bytes_per_s: float) -> str:
        """'compute' when the arithmetic takes longer than the memory traffic at these ceilings."""
        return "compute" if self.flops / flops_per_s > self.bytes / bytes_per_s else "memory"


def _pool_out(case: OpCase) -> tuple[int, ...]:
    from kernels.contract import pool_output_size

    n, c, h, w = case["x"]
    return (n, c, pool_output_size(h, case["kernel"], case["stride"]),
            pool_output_size(w, case["kernel"], case["stride"]))


def counts(case: OpCase) -> Counts:
    op = case.op
    x = prod(case["x"])
    if op in ("conv2d_forward", "conv2d_backward", "linear_forward", "linear_backward"):
        w_shape = case["w"]
        w = prod(w_shape)
        y = prod(output_shape(case))
        macs = y * prod(w_shape[1:])  # each output: C/G·KH·KW (or I) multiply-adds
        bias = w_shape[0]
        if op.endswith("forward"):
            return Counts(2 * macs + y, FLOAT * (x + w + bias + y))
        # dx and dw are a GEMM each as large as the forward; db sums dy.
        return Counts(4 * macs + y, FLOAT * (y + x + w + x + w + bias))
    if op == "relu_forward":
        return Counts(x, FLOAT * 2 * x)
    if op == "relu_backward":
        return Counts(x, FLOAT * 3 * x)
    if op == "lrn_forward":
        # per element: square, add the entering and drop the leaving square, k + alpha·sum, scale^-beta
        # (log2, multiply, exp2) and the product: ~8; reads x, writes y and scale.
        return Counts(8 * x, FLOAT * 3 * x)
    if op == "lrn_backward":
        # reads dy, x, y, scale, writes dx; ~ a dozen operations per element for the window sum
        return Counts(12 * x, FLOAT * 5 * x)
    if op == "maxpool_forward":
        y = prod(_pool_out(case))
        return Counts(y * case["kernel"] ** 2, FLOAT * x + (FLOAT + INT32) * y)
    if op == "maxpool_backward":
        y = prod(_pool_out(case))
        return Counts(y, (FLOAT + INT32) * y + FLOAT * x)
    if op == "dropout_forward":
        return Counts(x, FLOAT * 2 * x + MASK * x)
    if op == "dropout_backward":
        return Counts(x, FLOAT * 2 * x + MASK * x)
    if op == "softmax_xent_forward":
        n = case["x"][0]
        # max, subtract, exp, sum, divide: ~5 per logit; reads logits and labels, writes probs
        return Counts(5 * x, FLOAT * 2 * x + INT32 * n + FLOAT)
    if op == "softmax_xent_backward":
        n = case["x"][0]
        return Counts(2 * x, FLOAT * 2 * x + INT32 * n)
    if op == "sgd_update":
        # v = m·v − (wd·lr)·w − lr·g; w += v: reads w, grad, v; writes w, v
        return Counts(6 * x, FLOAT * 5 * x)
    raise ValueError(f"no counts defined for op {op!r}")
