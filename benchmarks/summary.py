"""The markdown summary and the combined JSON of a benchmarks/gpu_check.sh run.

    python -m benchmarks.summary OUTDIR --parts PARTS.tsv   # writes OUTDIR/summary.md, OUTDIR/results.json
    python -m benchmarks.summary --environment              # prints this machine's facts as JSON

It reads what the parts left in OUTDIR (quick.jsonl, step.json, gpu-tests.xml, kernels.json,
train-metrics.jsonl) and the parts table (name, status, seconds, limit; tab-separated); any of
them may be missing or cut short (a part that failed or ran out of time), and the summary then
says so instead of failing. Its first lines say which parts ran, failed, were cut off or never
started.

Then, so that OUTDIR keeps to eight files, kernels.json and step.json are folded into results.json
(its "kernels" and "step" keys hold them whole) and removed, and roofline.png and step.png are drawn
in their place (`alexnet-cuda plot roofline|step results.json` draws them again). A picture that
cannot be drawn is reported, never fatal: the numbers matter more than their pictures.
"""

from __future__ import annotations

import argparse
import json
import sys
import traceback
import xml.etree.ElementTree as ElementTree
from pathlib import Path


def markdown_table(headers: list[str], rows: list[list[str]]) -> str:
    def line(cells):
        return "| " + " | ".join(str(cell).replace("|", "\\|") for cell in cells) + " |"

    return "\n".join([line(headers), line(["---"] * len(headers)), *(line(row) for row in rows)])


def read_parts(path: Path | None) -> list[dict]:
    if path is None or not path.is_file():
        return []
    parts = []
    for line in path.read_text().splitlines():
        fields = line.split("\t")
        if len(fields) >= 3:
            parts.append({"part": fields[0], "status": fields[1], "seconds": int(fields[2]),
                          "limit": int(fields[3]) if len(fields) > 3 and fields[3].isdigit() else None})
    return parts


def read_json(path: Path):
    try:
        return json.loads(path.read_text())
    except (OSError, ValueError):
        return None


def read_junit(path: Path) -> dict | None:
    """Counts and the failing tests of a pytest JUnit XML report."""
    try:
        root = ElementTree.parse(path).getroot()
    except (OSError, ElementTree.ParseError):
        return None
    suites = [root] if root.tag == "testsuite" else list(root.iter("testsuite"))
    keys = ("tests", "failures", "errors", "skipped")
    counts = {key: sum(int(suite.get(key, 0)) for suite in suites) for key in keys}
    failing = []
    for case in root.iter("testcase"):
        for outcome in ("failure", "error"):
            element = case.find(outcome)
            if element is not None:
                message = (element.get("message") or "").strip().splitlines()
                failing.append(f"{case.get('classname')}::{case.get('name')}: {message[0] if message else outcome}")
    counts["passed"] = counts["tests"] - counts["failures"] - counts["errors"] - counts["skipped"]
    counts["failing"] = failing
    return counts


def read_metrics(path: Path) -> list[dict]:
    if not path.is_file():
        return []
    records = []
    for line in path.read_text().splitlines():
        try:
            records.append(json.loads(line))
        except ValueError:
            continue
    return records


def _fmt(value, spec: str) -> str:
    return "—" if value is None else format(value, spec)


def kernel_section(kernels: dict | None) -> list[str]:
    from benchmarks.report import short_layers

    if not kernels:
        return ["## Kernels", "", "No kernel results (the part failed or did not run; see log.txt)."]
    from benchmarks.ceilings import describe

    ceilings = kernels["ceilings"]
    lines = ["## Kernels", "",
             f"Batch {kernels['batch']}, {', '.join(kernels['archs'])}, versions: {kernels['versions']}. Ceilings "
             f"measured in the same run: {describe(ceilings)}. ms: median of one call (CUDA events, inputs "
             "rotated beyond L2); roof: share of the roofline floor; × vendor: vendor ms / our ms (above 1 is "
             "faster).", ""]
    lines += [f"- note: {note}" for note in kernels["notes"]]
    if not kernels.get("complete", True):
        lines.append(f"- INCOMPLETE: the part stopped after {kernels['cases_done']} of {kernels['cases']} cases")
    rows = []
    for row in kernels["rows"]:
        check = "ok" if row["validation"] in ("ok", "oracle") else "FAILED"
        rows.append([row["op"], row["face"], f"{row['version']}{'*' if row['promoted'] else ''}",
                     short_layers(row["layers"]), row["shape"], check, _fmt(row["ms"], ".3f"),
                     f"{row['achieved']:,.0f} {row['unit']}" if row["achieved"] is not None else "—",
                     _fmt(row["roofline_share"], ".0%"), row["vendor"] or "—", _fmt(row["vendor_ms"], ".3f"),
                     _fmt(row["vendor_ratio"], ".2f"), row["verdict"] or ""])
    lines += ["", markdown_table(["op", "face", "ver", "layers", "shape", "check", "ms", "rate", "roof", "vendor",
                                  "vendor ms", "× vendor", "target"], rows)]
    misses = [row for row in kernels["rows"] if (row["verdict"] or "").startswith(("MISSES", "no "))]
    failed = [row for row in kernels["rows"] if row["validation"].startswith("FAILED")]
    if misses or failed:
        lines += ["", "### Missed targets and failures", ""]
        lines += [f"- {r['op']} {r['face']} v{r['version']} ({short_layers(r['layers'])}): {r['verdict']}"
                  for r in misses]
        lines += [f"- {r['op']} {r['face']} v{r['version']} ({short_layers(r['layers'])}): {r['validation']}"
                  for r in failed]
    return lines


def step_section(step: dict | None) -> list[str]:
    if not step:
        return ["## Training step", "", "No step results (the part failed or did not run; see log.txt)."]
    lines = ["## Training step", "",
             f"Batch {step['batch']}, {step['steps']} timed steps after {step['warmup']} warm-up, one fixed random "
             "batch on the device; a step is forward, loss (read back to the host), backward and SGD.", ""]
    lines += [f"- note: {note}" for note in step["notes"]]
    if not step.get("complete", True):
        lines.append("- INCOMPLETE: the part stopped before every architecture and face was timed")
    rows = [[r["arch"], r["face"], _fmt(r["images_per_s"] if r["steps"] else None, ",.1f"),
             _fmt(r["ms_per_step"] if r["steps"] else None, ".1f"), _fmt(r.get("torch_images_per_s"), ",.1f"),
             _fmt(r.get("torch_ratio"), ".2f"), r.get("verdict") or r.get("note") or ""] for r in step["results"]]
    lines += ["", markdown_table(["arch", "face", "images/s", "ms/step", "PyTorch images/s", "× PyTorch", "target"],
                                 rows)]
    for r in step["results"]:
        if not r["steps"]:
            continue
        total = r["breakdown_step_ms"] or r["ms_per_step"]
        cells = [[layer["name"], f"{layer['forward_ms']:.3f}", f"{layer['backward_ms']:.3f}",
                  f"{(layer['forward_ms'] + layer['backward_ms']) / total:.1%}"] for layer in r["layers"]]
        cells += [["loss", f"{r['loss_ms']:.3f}", "", f"{r['loss_ms'] / total:.1%}"],
                  ["sgd update", "", f"{r['sgd_ms']:.3f}", f"{r['sgd_ms'] / total:.1%}"],
                  ["host gaps", "", f"{total - r['parts_ms']:.3f}", f"{(total - r['parts_ms']) / total:.1%}"]]
        lines += ["", f"{r['arch']} on {r['face']}, ms per layer (share of the {total:.1f} ms instrumented step):", "",
                  markdown_table(["layer", "forward ms", "backward ms", "share"], cells)]
    return lines


def read_quick(path: Path) -> list[dict]:
    """The JSON lines of benchmarks/gpu_quick.py (a cut-off part's last line may be half written)."""
    return read_metrics(path)


def overview(parts: list[dict]) -> list[str]:
    """One line per outcome: which parts ran and passed, failed, were cut off, never started."""
    groups = {"passed": [], "failed": [], "cut off by their time limit": [], "not started (budget spent)": []}
    for part in parts:
        status = part["status"]
        key = ("passed" if status == "ok" else "cut off by their time limit" if status.startswith("cut off")
               else "not started (budget spent)" if status.startswith("not started") else "failed")
        groups[key].append(part["part"] if key != "failed" else f"{part['part']} ({status})")
    return [f"- {name}: {', '.join(members)}" for name, members in groups.items() if members]


def quick_section(records: list[dict], parts: list[dict]) -> list[str]:
    status = {part["part"]: part["status"] for part in parts}
    lines = ["## Quick checks"]
    imports = [r for r in records if r.get("kind") == "import"]
    toolchain = [r for r in records if r.get("kind") == "toolchain"]
    lines += ["", "### Environment", ""]
    if not imports:
        lines.append("No environment results (the part failed or did not run; see log.txt).")
    else:
        missing = [f"{r['module']} ({r['version']})" for r in imports if r["required"] and r["status"] != "ok"]
        optional = [r["module"] for r in imports if not r["required"] and r["version"].startswith("MISSING")]
        lines.append(f"- required modules: {'MISSING ' + ', '.join(missing) if missing else 'all import'}; "
                     f"optional modules missing: {', '.join(optional) or 'none'}")
    for record in toolchain:
        numba = record.get("numba_cuda") or {}
        found_by = numba.get("found_by") or {}
        lines.append(f"- toolchain: CUDA_HOME={record.get('CUDA_HOME')}, CUDA_PATH={record.get('CUDA_PATH')}, nvcc "
                     f"{record.get('nvcc')}; numba-cuda NVVM {numba.get('nvvm')} (by {found_by.get('nvvm')}), "
                     f"libdevice {numba.get('libdevice')} (by {found_by.get('libdevice')}); CuPy "
                     f"{record.get('cupy_nvrtc')}")
    for part, title, kinds in (("promoted", "Promoted kernels against the reference", ("kernel", "face")),
                               ("curves", "Training curves of alexnet-mini against the CPU", ("curve", "face"))):
        rows = [r for r in records if r.get("part") == part and r.get("kind") in kinds]
        failed = [r for r in rows if r.get("status") == "failed"]
        stopped = any(r.get("part") == part and r.get("kind") == "stopped" for r in records)
        note = f"{len(rows) - len(failed)} ok, {len(failed)} failed"
        if stopped or status.get(part, "").startswith("cut off"):
            note += "; CUT OFF by the time limit after these lines"
        elif status.get(part, "ok") != "ok":
            note += f"; the part: {status.get(part)}"
        lines += ["", f"### {title} ({note})", ""]
        if not rows:
            lines.append("No results (see log.txt).")
        elif part == "promoted":
            lines.append(markdown_table(["face", "op", "size", "shape", "result"], [
                [r["face"], r.get("op", "—"), r.get("size", "—"), r.get("shape", "—"),
                 ("ok, max error " + ", ".join(f"{k} {v:.3g}" for k, v in r["errors"].items())) if r["status"] == "ok"
                 else f"FAILED: {r.get('error')}"] for r in rows]))
        else:
            lines.append(markdown_table(
                ["face", "loss, first → last", "largest difference from the CPU run", "same weights: loss, update",
                 "result"],
                [[r["face"], f"{r['losses'][0]:.4f} → {r['losses'][-1]:.4f}" if r.get("losses") else "—",
                  f"{r['free_max_difference']:.3g} (step {r['free_at_step']})" if "free_max_difference" in r else "—",
                  f"{r['same_weights_loss_difference']:.2g}, {r['update_difference']:.2%}"
                  if "update_difference" in r else "—",
                  r["status"] if r["status"] == "ok" else f"FAILED{': ' + r['error'] if r.get('error') else ''}"]
                 for r in rows]))
    return lines


def tune_section(records: list[dict], parts: list[dict]) -> list[str]:
    """`alexnet-cuda tune` per network and face: each shape's promoted and chosen time and the gain."""
    choices = [r for r in records if r.get("part") == "tune" and r.get("kind") == "choice"]
    status = {part["part"]: part["status"] for part in parts}.get("tune")
    lines = ["## Measured kernel choice (alexnet-cuda tune)", ""]
    if status and status != "ok":
        lines += [f"- the part: {status}; the shapes below are those measured before it stopped", ""]
    if not choices:
        return [*lines, "No choices (the part failed or did not run; see log.txt)."]
    rows = [[r["arch"], r["face"], r["op"], r["shape"], _fmt(r["ms"].get("promoted"), ".3f"), r["choice"],
             _fmt(r["ms"].get(r["choice"]), ".3f"), f"{r['gain']:.2f}x", ", ".join(r.get("refused", {})) or "-"]
            for r in choices]
    headers = ["arch", "face", "op", "shape", "promoted ms", "choice", "choice ms", "gain", "refused"]
    return [*lines, markdown_table(headers, rows)]


def tests_section(junit: dict | None) -> list[str]:
    if junit is None:
        return ["## GPU tests", "", "No test report (the part failed to start or ran out of time; see log.txt)."]
    lines = ["## GPU tests", "",
             f"`pytest -m gpu tests`: {junit['passed']} passed, {junit['failures']} failed, {junit['errors']} errors, "
             f"{junit['skipped']} skipped of {junit['tests']}."]
    lines += [f"- {failure}" for failure in junit["failing"]]
    return lines


def train_section(metrics: list[dict]) -> list[str]:
    if not metrics:
        return ["## Training run", "", "No metrics (the run failed or ran out of time; see log.txt)."]
    last = metrics[-1]
    keys = [k for k in ("epoch", "step", "lr", "train_loss", "val_loss", "val_top1", "val_top5", "images_per_s",
                        "skipped_images") if k in last]
    return ["## Training run", "",
            "alexnet-owt, batch 128, 50 steps in two epochs of 25, cuda face, synthetic data "
            "(`alexnet-cuda train --max-steps 50`); the metrics file's records (one per epoch):", "",
            markdown_table(keys, [[_cell(record.get(k)) for k in keys] for record in metrics])]


def _cell(value) -> str:
    if isinstance(value, float):
        return f"{value:.4g}"
    return "—" if value is None else str(value)


def build(outdir: Path, parts_path: Path | None, environment: dict | None = None,
          mode: str = "full") -> tuple[dict, str]:
    """(results.json content, summary.md text) from what a gpu_check run left in `outdir`."""
    parts = read_parts(parts_path)
    quick = read_quick(outdir / "quick.jsonl")
    kernels = read_json(outdir / "kernels.json")
    step = read_json(outdir / "step.json")
    junit = read_junit(outdir / "gpu-tests.xml")
    metrics = read_metrics(outdir / "train-metrics.jsonl")
    if environment is None:
        environment = (kernels or step or {}).get("environment") or {}
    results = {"mode": mode, "environment": environment, "parts": parts, "quick": quick, "gpu_tests": junit,
               "kernels": kernels, "step": step, "train_metrics": metrics}
    title = (f"# GPU check ({mode}): {environment.get('gpu', 'unknown GPU')} · "
             f"{environment.get('date', 'unknown date')} · commit {environment.get('commit', 'unknown')}")
    command = "benchmarks/gpu_check.sh OUTDIR" + (" --quick" if mode == "quick" else "")
    lines = [title, "", f"Command: `{command}` (from the checkout, with PYTHONPATH). "
             f"Machine: {environment.get('gpu', '?')}, {environment.get('cpu', '?')}; CUDA driver "
             f"{environment.get('cuda_driver', '?')}, CuPy {environment.get('cupy', '?')}.", "", *overview(parts),
             "", "## Parts", ""]
    lines.append(markdown_table(["part", "status", "seconds", "limit"],
                                [[p["part"], p["status"], str(p["seconds"]), _cell(p["limit"])] for p in parts])
                 if parts else "No parts table.")
    sections = [quick_section(quick, parts), step_section(step)]
    if any(part["part"] == "tune" for part in parts):
        sections.append(tune_section(quick, parts))
    if mode == "full":
        sections += [tests_section(junit), kernel_section(kernels), train_section(metrics)]
    for section in sections:
        lines += ["", *section]
    return results, "\n".join(lines) + "\n"


FOLDED = ("kernels.json", "step.json")  # whole inside results.json once it is written
PICTURES = {"roofline.png": "kernels", "step.png": "step"}  # picture: the results.json key it is drawn from


def draw_pictures(outdir: Path, results: dict) -> dict[str, str]:
    """Draw each picture of PICTURES from `results` into `outdir`; {picture: "drawn" or why not}."""
    try:
        from alexnet_cuda import plots
        from alexnet_cuda.plots import roofline, step
    except ImportError as error:  # a machine without matplotlib still gets its numbers
        return {name: f"not drawn: {error}" for name in PICTURES}
    draw = {"kernels": roofline.draw, "step": step.draw}
    outcomes = {}
    for name, key in PICTURES.items():
        if not results.get(key):
            outcomes[name] = f"not drawn: no {key} results"
            continue
        try:
            plots.save(draw[key](results[key], "results.json"), outdir / name)
            outcomes[name] = "drawn"
        except plots.PlotError as error:
            outcomes[name] = f"not drawn: {error}"
        except Exception as error:  # a bug in the drawing: reported with where it happened, the run goes on
            where = traceback.extract_tb(error.__traceback__)[-1]
            outcomes[name] = f"FAILED: {type(error).__name__}: {error} ({Path(where.filename).name}:{where.lineno})"
    return outcomes


def pictures_section(outcomes: dict[str, str]) -> list[str]:
    lines = ["## Pictures", ""]
    lines += [f"- {name}: {outcome}" for name, outcome in outcomes.items()]
    return lines


def write(outdir: Path, results: dict, text: str) -> None:
    from loaders.atomic import write_text

    write_text(outdir / "results.json", json.dumps(results, indent=1, default=str) + "\n")
    write_text(outdir / "summary.md", text)


def environment_facts() -> dict:
    from benchmarks.environment import describe
    from kernels.gpu_probe import has_gpu

    facts = describe(has_gpu())
    for module in ("numba", "numba_cuda", "torch", "cupy"):
        try:
            facts[module] = __import__(module).__version__
        except Exception as error:  # a missing library is a fact too
            facts[module] = f"not importable ({type(error).__name__})"
    return facts


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m benchmarks.summary", description=__doc__.split("\n")[0])
    parser.add_argument("outdir", nargs="?", type=Path, help="the folder gpu_check.sh wrote its results to")
    parser.add_argument("--parts", type=Path, default=None, help="the parts table (tab-separated)")
    parser.add_argument("--mode", choices=("quick", "full"), default="full", help="which run of gpu_check.sh it was")
    parser.add_argument("--environment", action="store_true", help="print this machine's facts as JSON and stop")
    args = parser.parse_args(argv)
    if args.environment:
        print(json.dumps(environment_facts(), indent=1))
        return 0
    if args.outdir is None or not args.outdir.is_dir():
        parser.error(f"OUTDIR: expected an existing folder, got {args.outdir}")
    try:
        environment = environment_facts()
    except Exception as error:  # the summary must still be written when the GPU is in a bad state
        environment = {"error": f"{type(error).__name__}: {error}"}
    results, text = build(args.outdir, args.parts, environment, args.mode)
    write(args.outdir, results, text)
    for name in FOLDED:  # only now that results.json holds them
        (args.outdir / name).unlink(missing_ok=True)
    results["pictures"] = draw_pictures(args.outdir, results)
    text += "\n" + "\n".join(pictures_section(results["pictures"])) + "\n"
    write(args.outdir, results, text)
    print(text)
    return 0


if __name__ == "__main__":
    sys.exit(main())
