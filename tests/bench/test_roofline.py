"""Roofline counts, targets, verdicts and the aligned tables of the kernel benchmark."""

import math

import pytest

from benchmarks.cases import output_shape
from benchmarks.counts import counts
from benchmarks.report import KernelRow, fill_rates, fill_verdict, format_kernel_rows, short_layers, target_for
from benchmarks.shapes import benchmark_cases, shaped_layers

H200_LIKE = dict(flops_per_s=50e12, bytes_per_s=4.3e12)  # the order of the measured ceilings on an H200


def _case(op, **dims):
    return next(c for c in benchmark_cases(ops=[op]) if all(c[k] == v for k, v in dims.items()))


def test_fc6_forward_counts_by_hand():
    fc6 = _case("linear_forward", w=(4096, 9216))
    c = counts(fc6)
    assert c.flops == 2 * 128 * 9216 * 4096 + 128 * 4096
    assert c.bytes == 4 * (128 * 9216 + 4096 * 9216 + 4096 + 128 * 4096)
    assert c.bound(**H200_LIKE) == "compute"


def test_conv_and_linear_flops_add_up_to_the_networks_multiply_adds():
    for arch in ("alexnet2012", "alexnet-owt"):
        macs = sum(layer.macs for layer in shaped_layers(arch, 128))
        forward = [c for c in benchmark_cases([arch]) if c.op in ("conv2d_forward", "linear_forward")]
        outputs = sum(math.prod(output_shape(c)) for c in forward)  # one bias add per output
        assert sum(counts(c).flops for c in forward) == 2 * macs + outputs
        backward = [c for c in benchmark_cases([arch]) if c.op in ("conv2d_backward", "linear_backward")]
        assert sum(counts(c).flops for c in backward) == 4 * macs + outputs  # dx and dw, then db


def test_elementwise_ops_are_memory_bound_and_count_each_array_once():
    relu = _case("relu_backward", x=(128, 4096))
    assert counts(relu).bytes == 3 * 4 * 128 * 4096
    assert counts(relu).bound(**H200_LIKE) == "memory"
    sgd = _case("sgd_update", x=(4096, 9216))
    assert counts(sgd).bytes == 5 * 4 * 4096 * 9216
    pool = _case("maxpool_forward", x=(128, 96, 55, 55))
    assert counts(pool).bytes == 4 * 128 * 96 * 55 * 55 + 8 * 128 * 96 * 27 * 27


def test_rates_shares_and_verdicts():
    row = KernelRow("cuda", "3", True, "linear_forward", ("alexnet2012/fc6",), "s", "ok", ms=0.5,
                    flops=int(10e9), bytes=int(150e6), vendor="cuBLAS", vendor_ms=0.3, vendor_ratio=0.6)
    fill_rates(row, **H200_LIKE)
    assert row.bound == "compute" and row.unit == "GFLOP/s"
    assert row.achieved == pytest.approx(20_000)
    assert row.roofline_share == pytest.approx((10e9 / 50e12) / 0.5e-3)
    fill_verdict(row)
    assert row.verdict.startswith("MISSES by 25%")
    assert "needs 1.33x" in row.verdict
    row.vendor_ratio = 0.85
    fill_verdict(row)
    assert row.verdict.startswith("met")


def test_targets_follow_the_issue():
    assert target_for("cuda", "linear_forward", ("alexnet2012/fc7",)).minimum == 0.8
    assert target_for("numba", "linear_backward", ("alexnet-owt/fc6",)).minimum == 0.5
    assert target_for("cuda", "linear_forward", ("alexnet2012/fc8",)) is None
    assert target_for("numba", "conv2d_backward", ("alexnet2012/conv3",)).metric == "vendor"
    assert target_for("cuda", "lrn_backward", ()).metric == "bandwidth"
    assert target_for("cuda", "softmax_xent_forward", ()) is None
    assert target_for("reference", "relu_forward", ()) is None


def test_missing_baseline_is_said_not_guessed():
    row = KernelRow("cuda", "1", True, "conv2d_forward", ("alexnet2012/conv1",), "s", "ok", ms=1.0)
    fill_verdict(row)
    assert row.verdict.startswith("no baseline")


def test_tables_align_and_drop_columns_empty_everywhere():
    rows = [KernelRow("reference", "contract", True, "relu_forward", ("alexnet2012/relu6", "alexnet-owt/relu6"),
                      "128x4096", "oracle", ms=1.5, spread=0.1, flops=1, bytes=10)]
    fill_rates(rows[0], 1e9, 1e9)
    text = format_kernel_rows(rows)
    header, rule, line = text.splitlines()[1:4]
    assert "vendor" not in header and "target" not in header and "host ms" not in header
    assert len(header) == len(rule) >= len(line)
    assert "2012 relu6 · owt relu6" in line
    assert short_layers(("alexnet2012/conv1",)) == "2012 conv1"
