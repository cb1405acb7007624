"""Every timed kernel of a `bench kernels` result under the roofline of the machine it ran on.

A point is one (op case, face, version): x its arithmetic intensity, the FLOPs it must do over the
fewest bytes it must move (benchmarks.counts), y the FLOPs it did per second. The roof is the two
ceilings measured in the same run: the copy bandwidth times the intensity, capped by SGEMM. A
memory-bound op's point sits under the slope, a GEMM's under the flat part; the gap to the roof is
the share of the floor time the kernel missed. Marker shape is the face, colour the op; the
promoted version is filled, other versions hollow, and the vendor library's time for the same case
(cuBLAS, cuDNN) is a diamond at the same intensity, joined to the promoted point by a thin line.
"""

from __future__ import annotations

from matplotlib import colormaps
from matplotlib.figure import Figure
from matplotlib.lines import Line2D

from alexnet_cuda.plots import PlotError, provenance

SIZE = (11, 7.5)
MARKERS = {"reference": "o", "numba": "s", "cuda": "^"}
VENDOR_MARKER = "D"
TIMED = ("ok", "oracle")


def points(result: dict) -> list[dict]:
    """One dict per timed row: face, version, promoted, op, case (op and shape), intensity, flops_per_s,
    and vendor_flops_per_s where the vendor was timed."""
    found = []
    for row in result["rows"]:
        if row.get("validation") not in TIMED or not row.get("ms") or not row.get("flops") or not row.get("bytes"):
            continue
        seconds = row["ms"] * 1e-3
        point = {key: row[key] for key in ("face", "version", "promoted", "op")}
        point.update(case=(row["op"], row["shape"]), intensity=row["flops"] / row["bytes"],
                     flops_per_s=row["flops"] / seconds, vendor=row.get("vendor"),
                     vendor_flops_per_s=row["flops"] / (row["vendor_ms"] * 1e-3) if row.get("vendor_ms") else None)
        found.append(point)
    return found


def draw(result: dict, source: str = "") -> Figure:
    ceilings = result["ceilings"]
    bandwidth, peak = ceilings["copy_bytes_per_s"], ceilings["sgemm_flops_per_s"]
    timed = points(result)
    if not timed:
        raise PlotError("no timed kernel in it (every row failed validation or was not timed): nothing to draw")
    figure = Figure(figsize=SIZE, layout="constrained")
    axes = figure.subplots()
    ops = sorted({p["op"] for p in timed})
    palette = colormaps["tab20"]  # twenty distinct colours: both networks have fifteen ops
    colour = {op: palette(i % 20) for i, op in enumerate(ops)}
    intensities = [p["intensity"] for p in timed] or [peak / bandwidth]
    low, high = min(min(intensities), peak / bandwidth) / 3, max(max(intensities), peak / bandwidth) * 3
    ridge = peak / bandwidth
    axes.plot([low, ridge, high], [low * bandwidth / 1e9, peak / 1e9, peak / 1e9], color="black", linewidth=2,
              gid="roof")
    axes.annotate(f"copy {bandwidth / 1e9:,.0f} GB/s", (low * 1.3, low * 1.3 * bandwidth / 1e9), rotation=0,
                  xytext=(4, 8), textcoords="offset points", fontsize=9)
    axes.annotate(f"SGEMM {peak / 1e9:,.0f} GFLOP/s", (ridge, peak / 1e9), xytext=(6, 5), textcoords="offset points",
                  fontsize=9)
    for point in timed:
        marker = MARKERS.get(point["face"], "P")
        face_colour = colour[point["op"]] if point["promoted"] else "none"
        axes.scatter(point["intensity"], point["flops_per_s"] / 1e9, marker=marker, s=60 if point["promoted"] else 36,
                     facecolors=face_colour, edgecolors=colour[point["op"]], linewidths=1.2, zorder=3,
                     gid=f"kernel:{point['face']}")
        if point["promoted"] and point["vendor_flops_per_s"]:
            axes.plot([point["intensity"]] * 2, [point["flops_per_s"] / 1e9, point["vendor_flops_per_s"] / 1e9],
                      color=colour[point["op"]], linewidth=0.6, alpha=0.6)
    vendor_cases = {}
    for point in timed:
        if point["vendor_flops_per_s"]:
            vendor_cases[point["case"]] = point
    for point in vendor_cases.values():
        axes.scatter(point["intensity"], point["vendor_flops_per_s"] / 1e9, marker=VENDOR_MARKER, s=44,
                     facecolors="white", edgecolors=colour[point["op"]], linewidths=1.5, zorder=2, gid="vendor")
    axes.set_xscale("log")
    axes.set_yscale("log")
    axes.set_xlabel("arithmetic intensity (FLOP per byte of the fewest bytes the op must move, log scale)")
    axes.set_ylabel("achieved rate (GFLOP/s, log scale)")
    axes.grid(alpha=0.3, which="both")
    faces = sorted({p["face"] for p in timed}, key=lambda f: list(MARKERS).index(f) if f in MARKERS else 9)
    handles = [Line2D([], [], linestyle="", marker=MARKERS.get(face, "P"), color="grey", label=f"{face} face")
               for face in faces]
    handles += [Line2D([], [], linestyle="", marker="o", markerfacecolor="none", markeredgecolor="grey",
                       label="other versions (hollow)")] if any(not p["promoted"] for p in timed) else []
    handles += [Line2D([], [], linestyle="", marker="o", color="grey", label="promoted version (filled)")]
    if vendor_cases:
        names = sorted({p["vendor"] for p in vendor_cases.values() if p["vendor"]})
        handles.append(Line2D([], [], linestyle="", marker=VENDOR_MARKER, markerfacecolor="white",
                              markeredgecolor="grey", label=f"vendor ({', '.join(names)})"))
    handles += [Line2D([], [], linestyle="", marker="s", color=colour[op], label=op) for op in ops]
    axes.legend(handles=handles, fontsize=8, loc="center left", bbox_to_anchor=(1.01, 0.5))
    environment = result["environment"]
    cases = len({p["case"] for p in timed})
    axes.set_title(f"Roofline of {cases} kernel cases at batch {result.get('batch', '?')} "
                   f"({', '.join(result.get('archs', []))}): every timed kernel against the measured ceilings\n"
                   f"{provenance(environment)}{' · ' + source if source else ''}", fontsize=11)
    return figure
