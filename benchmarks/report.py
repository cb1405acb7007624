"""Rows, targets and verdicts of the kernel benchmark, and aligned text tables.

Each kernel row reports: the median time of one call; the achieved rate (GFLOP/s for a
compute-bound case, GB/s for a memory-bound one, by the roofline of this machine's measured
ceilings); the share of the roofline floor (floor time / measured time: 100% is the ceiling); the
vendor baseline's time on the same inputs and our speed relative to it (vendor time / our time, so
above 1 is faster than the vendor); and, where the issue sets a target, whether the row meets it
or by how much it misses.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass

from kernels import GPU_FACES

MEMORY_BOUND_OPS = ("relu_forward", "relu_backward", "dropout_forward", "dropout_backward", "maxpool_forward",
                    "maxpool_backward", "lrn_forward", "lrn_backward", "sgd_update")


@dataclass(frozen=True)
class Target:
    metric: str  # "vendor": vendor time / our time; "bandwidth": achieved bytes/s / measured copy bytes/s
    minimum: float
    text: str

    def verdict(self, value: float | None) -> str:
        if value is None:
            return f"no {'baseline' if self.metric == 'vendor' else 'measurement'} for {self.text}"
        if value >= self.minimum:
            return f"met: {value:.2f} >= {self.minimum:.2f} {self.text}"
        return (f"MISSES by {1 - value / self.minimum:.0%}: {value:.2f} < {self.minimum:.2f} {self.text} "
                f"(needs {self.minimum / value:.2f}x)" if value > 0 else f"MISSES: {self.text}")


def target_for(face: str, op: str, layers: tuple[str, ...]) -> Target | None:
    """The issue's targets (on an H200; ratios in one run)."""
    if face not in GPU_FACES:
        return None
    if op.startswith("linear") and any(label.endswith(("/fc6", "/fc7")) for label in layers):
        share = 0.8 if face == "cuda" else 0.5
        return Target("vendor", share, "of cuBLAS on fc6/fc7")
    if op.startswith("conv2d"):
        return Target("vendor", 0.5, "of cuDNN float32")
    if op in MEMORY_BOUND_OPS:
        return Target("bandwidth", 0.7, "of copy bandwidth")
    return None


@dataclass
class KernelRow:
    face: str
    version: str  # the version number, "contract" for a face without numbered versions
    promoted: bool
    op: str
    layers: tuple[str, ...]
    shape: str
    validation: str  # "ok", "oracle" (the reference), or "FAILED: ..."
    ms: float | None = None
    spread: float | None = None
    host_ms: float | None = None
    sets: int | None = None
    flops: int = 0
    bytes: int = 0
    bound: str = ""
    achieved: float | None = None  # GFLOP/s or GB/s, per `bound`
    unit: str = ""
    roofline_share: float | None = None
    bandwidth_share: float | None = None
    vendor: str | None = None
    vendor_ms: float | None = None
    vendor_ratio: float | None = None
    target: str | None = None
    verdict: str | None = None

    def as_dict(self) -> dict:
        data = asdict(self)
        data["layers"] = list(self.layers)
        return data


def fill_rates(row: KernelRow, flops_per_s: float | None, bytes_per_s: float | None) -> None:
    """Achieved rate, roofline share and bandwidth share from row.ms and the ceilings; nothing where
    a ceiling could not be measured (None), since the bound then cannot be told."""
    if row.ms is None or row.ms <= 0 or flops_per_s is None or bytes_per_s is None:
        return
    seconds = row.ms * 1e-3
    compute_time, memory_time = row.flops / flops_per_s, row.bytes / bytes_per_s
    row.bound = "compute" if compute_time > memory_time else "memory"
    if row.bound == "compute":
        row.achieved, row.unit = row.flops / seconds / 1e9, "GFLOP/s"
    else:
        row.achieved, row.unit = row.bytes / seconds / 1e9, "GB/s"
    row.roofline_share = max(compute_time, memory_time) / seconds
    row.bandwidth_share = memory_time / seconds


def fill_verdict(row: KernelRow) -> None:
    target = target_for(row.face, row.op, row.layers)
    if target is None:
        return
    row.target = f">= {target.minimum:.2f} {target.text}"
    value = row.vendor_ratio if target.metric == "vendor" else row.bandwidth_share
    row.verdict = target.verdict(value)


def short_layers(layers) -> str:
    """'alexnet2012/relu6, alexnet-owt/relu6' -> '2012 relu6 · owt relu6'."""
    by_arch: dict[str, list[str]] = {}
    for label in layers:
        arch, _, layer = label.partition("/")
        by_arch.setdefault(arch.replace("alexnet-", "").replace("alexnet", ""), []).append(layer)
    return " · ".join(f"{arch} {','.join(names)}" for arch, names in by_arch.items())


def format_table(headers: list[str], rows: list[list[str]], right: set[int] = frozenset()) -> str:
    """Columns padded to their widest cell; columns whose index is in `right` aligned right."""
    widths = [len(h) for h in headers]
    for row in rows:
        for i, cell in enumerate(row):
            widths[i] = max(widths[i], len(cell))

    def line(cells):
        return "  ".join(cell.rjust(w) if i in right else cell.ljust(w)
                         for i, (cell, w) in enumerate(zip(cells, widths, strict=True))).rstrip()

    return "\n".join([line(headers), line(["-" * w for w in widths]), *(line(r) for r in rows)])


def _number(value, fmt: str, missing: str = "—") -> str:
    return missing if value is None else format(value, fmt)


def format_kernel_rows(rows: list[KernelRow]) -> str:
    """One aligned table per op, rows in the order given; promoted versions marked with *. Columns
    that are empty in every row (no vendor, no targets on a CPU run) are left out."""
    headers = ["face", "ver", "layers", "shape", "check", "ms", "±", "host ms", "rate", "roof", "vendor",
               "vendor ms", "x vendor", "target"]
    right = {5, 6, 7, 8, 9, 11, 12}
    cells_by_op: dict[str, list[list[str]]] = {}
    for row in rows:
        cells_by_op.setdefault(row.op, []).append([
            row.face, f"{row.version}{'*' if row.promoted else ''}", short_layers(row.layers), row.shape,
            "ok" if row.validation in ("ok", "oracle") else "FAIL",
            _number(row.ms, ".3f"), _number(row.spread, ".0%"), _number(row.host_ms, ".3f"),
            f"{row.achieved:,.0f} {row.unit}" if row.achieved is not None else "—",
            _number(row.roofline_share, ".0%"), row.vendor or "—", _number(row.vendor_ms, ".3f"),
            _number(row.vendor_ratio, ".2f"), row.verdict or "",
        ])
    every = [cells for op_cells in cells_by_op.values() for cells in op_cells]
    keep = [i for i in range(len(headers)) if any(cells[i] not in ("—", "") for cells in every)]
    blocks = []
    for op, op_cells in cells_by_op.items():
        table = format_table([headers[i] for i in keep], [[cells[i] for i in keep] for cells in op_cells],
                             {position for position, i in enumerate(keep) if i in right})
        blocks.append(f"{op}\n{table}")
    return "\n\n".join(blocks)
