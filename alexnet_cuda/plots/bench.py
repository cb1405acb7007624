"""Reading `bench kernels --json` and `bench step --json` results, alone or inside a file that holds
several (benchmarks/gpu_check.sh's results.json), for the roofline and step pictures."""

from __future__ import annotations

import json
from pathlib import Path

from alexnet_cuda.plots import PlotError

COMMANDS = {"kernels": "alexnet-cuda bench kernels --json PATH", "step": "alexnet-cuda bench step --json PATH"}


def read_result(path: Path, kind: str) -> dict:
    """The `kind` ("kernels" or "step") benchmark result in the JSON file `path`: the file itself, or
    the first object marked "kind": `kind` found inside it."""
    path = Path(path)
    if not path.is_file():
        raise PlotError(f"{path}: no such file; pass the JSON that `{COMMANDS[kind]}` wrote "
                        f"(or benchmarks/gpu_check.sh's results.json)")
    try:
        data = json.loads(path.read_text())
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as error:
        raise PlotError(f"{path}: not a JSON file ({error}); pass the JSON that `{COMMANDS[kind]}` wrote") from error
    found = _find(data, kind)
    if found is None:
        raise PlotError(f"{path}: holds no `bench {kind}` result (no object with \"kind\": \"{kind}\"); pass the JSON "
                        f"that `{COMMANDS[kind]}` wrote")
    rows = found.get("rows" if kind == "kernels" else "results")
    if not isinstance(rows, list) or not isinstance(found.get("environment"), dict):
        raise PlotError(f"{path}: its `bench {kind}` result lacks its rows or environment; the file is damaged or "
                        f"from another version: run `{COMMANDS[kind]}` again")
    return found


def _find(data, kind: str):
    if isinstance(data, dict):
        if data.get("kind") == kind:
            return data
        values = data.values()
    elif isinstance(data, list):
        values = data
    else:
        return None
    for value in values:
        found = _find(value, kind)
        if found is not None:
            return found
    return None
