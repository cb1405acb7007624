"""Where a training step's time goes: from a `bench step` result, one stacked bar per (network,
face) of each layer's forward, the loss, each layer's backward, the SGD update and the host gaps
(the instrumented step's wall time that no part accounts for: on a GPU, the device waiting for the
host to queue the next launch), with PyTorch's whole step beside it where it was timed.

A bar's height is the instrumented step's wall time; a black tick marks the step as the trainer
runs it, uninstrumented, which is what PyTorch's bar is comparable with.
"""

from __future__ import annotations

from matplotlib import colormaps
from matplotlib.figure import Figure
from matplotlib.patches import Patch

from alexnet_cuda.plots import PlotError, provenance

SIZE = (11, 7.5)
LABEL_SHARE = 0.04  # a segment at least this share of the tallest bar is labelled with its layer's name
FIXED = {"loss": "#333333", "SGD update": "#e0b000", "host gaps": "#d8d8d8", "PyTorch step": "#7a7a7a"}
# The layers with weights get a colour each; the others one pale colour per kind, by name prefix,
# so that the legend stays short and the costly layers stand out.
LIGHT_KINDS = {"relu": ("ReLU", "#c8c8c8"), "lrn": ("LRN", "#e6d3a3"), "pool": ("max-pool", "#b3c6d9"),
               "drop": ("dropout", "#f0c4d4"), "flatten": ("flatten", "#efefef")}


def layer_colours(names: list[str]) -> tuple[dict[str, object], dict[str, object]]:
    """({layer name: colour}, {legend label: colour})."""
    palette = colormaps["tab10"]
    colours, legend = {}, {}
    weighted = [name for name in names if not name.startswith(tuple(LIGHT_KINDS))]
    for index, name in enumerate(weighted):
        colours[name] = legend[name] = palette(index % 10)
    for name in names:
        for prefix, (label, colour) in LIGHT_KINDS.items():
            if name.startswith(prefix):
                colours[name] = legend[label] = colour
    return colours, legend


def segments(result: dict) -> list[tuple[str, str, float]]:
    """(layer or part, "forward"/"backward"/"", ms) of one (arch, face) result, bottom to top: the
    forward pass in order, the loss, the backward pass in reverse order, SGD, the host gaps."""
    layers = result["layers"]
    parts = [(layer["name"], "forward", layer["forward_ms"]) for layer in layers]
    parts.append(("loss", "", result["loss_ms"]))
    parts += [(layer["name"], "backward", layer["backward_ms"]) for layer in reversed(layers)]
    parts.append(("SGD update", "", result["sgd_ms"]))
    parts.append(("host gaps", "", max(0.0, result["breakdown_step_ms"] - result["parts_ms"])))
    return parts


def timed_results(result: dict) -> list[dict]:
    return [r for r in result["results"] if r.get("steps")]


def draw(result: dict, source: str = "") -> Figure:
    timed = timed_results(result)
    if not timed:
        raise PlotError("no timed step in it (every network and face failed or was cut off): nothing to draw")
    figure = Figure(figsize=SIZE, layout="constrained")
    axes = figure.subplots()
    layer_names = list(dict.fromkeys(layer["name"] for r in timed for layer in r["layers"]))
    colours, legend = layer_colours(layer_names)
    colours |= FIXED
    tallest = max([r["breakdown_step_ms"] for r in timed]
                  + [1e3 * r["batch"] / r["torch_images_per_s"] for r in timed if r.get("torch_images_per_s")] or [1])
    labels, position = [], 0
    torch_drawn = set()
    for r in timed:
        bottom = 0.0
        for name, direction, ms in segments(r):
            if ms <= 0:
                continue
            axes.bar(position, ms, bottom=bottom, width=0.7, color=colours[name], edgecolor="white", linewidth=0.5,
                     hatch="///" if direction == "backward" else None, gid=f"{name}:{direction}")
            if ms >= LABEL_SHARE * tallest:
                axes.text(position, bottom + ms / 2, f"{name} {direction}".strip(), ha="center", va="center",
                          fontsize=7, color="white" if name == "loss" else "black")
            bottom += ms
        axes.plot([position - 0.4, position + 0.4], [r["ms_per_step"]] * 2, color="black", linewidth=2)
        labels.append((position, f"{r['arch']}\n{r['face']} face"))
        position += 1
        if r.get("torch_images_per_s") and r["arch"] not in torch_drawn:
            torch_drawn.add(r["arch"])
            axes.bar(position, 1e3 * r["batch"] / r["torch_images_per_s"], width=0.7, color=FIXED["PyTorch step"],
                     gid="PyTorch")
            labels.append((position, f"{r['arch']}\nPyTorch"))
            position += 1
    axes.set_xticks([p for p, _ in labels], [text for _, text in labels], fontsize=9)
    axes.set_ylabel("time of one training step (ms)")
    axes.set_xlabel("network and face (bar: the instrumented step; black tick: the step uninstrumented)")
    axes.grid(axis="y", alpha=0.3)
    handles = [Patch(facecolor=colour, label=label) for label, colour in legend.items()]
    handles += [Patch(facecolor="white", edgecolor="black", hatch="///", label="backward (hatched)")]
    handles += [Patch(facecolor=FIXED[name], label=name) for name in ("loss", "SGD update", "host gaps")]
    if torch_drawn:
        handles.append(Patch(facecolor=FIXED["PyTorch step"], label="PyTorch step (whole)"))
    axes.legend(handles=handles, fontsize=8, loc="center left",
                bbox_to_anchor=(1.01, 0.5))
    environment = result["environment"]
    axes.set_title(f"Where a training step's time goes at batch {result.get('batch', '?')}: forward, loss, backward "
                   f"per layer, SGD and host gaps\n{provenance(environment)}{' · ' + source if source else ''}",
                   fontsize=11)
    return figure
