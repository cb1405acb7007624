"""One module per `alexnet-cuda` subcommand: add_arguments(parser) and run(args) -> exit status.

What several commands share lives here, below alexnet_cuda.cli, which imports the commands and is
imported by none of them: UsageError, and the --json results file.
"""

from __future__ import annotations

import json
from pathlib import Path

from loaders import atomic


class UsageError(Exception):
    """A problem with what the user asked for; printed without a traceback, exit status 2."""


def check_json_path(path: Path | None) -> None:
    """Fail before a long run, not after it, when the JSON cannot be written where asked."""
    if path is None:
        return
    folder = path.resolve().parent
    if not folder.is_dir():
        raise UsageError(f"--json {path}: the folder {folder} does not exist; create it or choose another path")
    if path.is_dir():
        raise UsageError(f"--json {path}: is a folder; give a file name such as {path / 'bench.json'}")


def write_json(path: Path, result: dict) -> None:
    """Write atomically (loaders.atomic), so an interrupted run never leaves half a JSON file under the
    name asked for."""
    atomic.write_text(path, json.dumps(result, indent=1, default=str) + "\n")
