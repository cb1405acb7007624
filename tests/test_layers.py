"""Layers point down only: every import statement of the packages, read from their source (lazy
imports inside functions included), against the layering README.md describes:

    kernels       the op contract, geometry, the three faces and the toolchain that checks them
    loaders       data; may use kernels (the augment kernels, the face registry)
    alexnet_cuda  the model and the trainer; its commands and CLI sit on top with the harness
    benchmarks    the harness; may use everything below
and tests/ is imported by nothing.
"""

import ast
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]

# package (or one of its files / folders) -> top-level packages it must not import
FORBIDDEN = {
    "kernels": {"loaders", "alexnet_cuda", "benchmarks", "tests"},
    "loaders": {"alexnet_cuda", "benchmarks", "tests"},
    "alexnet_cuda": {"benchmarks", "tests"},
    "alexnet_cuda/commands": {"tests"},  # the CLI runs the benchmarks: it is on top
    "alexnet_cuda/cli.py": {"tests"},
    "benchmarks": {"tests"},
}


def imported_modules(path: Path, root: Path):
    """(line, dotted name) of every module a file imports, relative imports resolved."""
    package = list(path.relative_to(root).with_suffix("").parts[:-1])
    for node in ast.walk(ast.parse(path.read_text(), filename=str(path))):
        if isinstance(node, ast.Import):
            for alias in node.names:
                yield node.lineno, alias.name
        elif isinstance(node, ast.ImportFrom):
            base = package[: len(package) - node.level + 1] if node.level else []
            yield node.lineno, ".".join([*base, *([node.module] if node.module else [])])


def rule_for(path: Path, root: Path) -> set[str]:
    """The forbidden packages of the most specific FORBIDDEN entry that holds `path`."""
    relative = path.relative_to(root).as_posix()
    holders = [key for key in FORBIDDEN if relative == key or relative.startswith(key + "/")]
    return FORBIDDEN[max(holders, key=len)] if holders else set()


def violations(root: Path) -> list[str]:
    found = []
    for package in ("kernels", "loaders", "alexnet_cuda", "benchmarks"):
        for path in sorted((root / package).rglob("*.py")):
            forbidden = rule_for(path, root)
            for line, module in imported_modules(path, root):
                if module.split(".")[0] in forbidden:
                    found.append(f"{path.relative_to(root)}:{line} imports {module}")
    return found


def test_layers_point_down_only():
    assert violations(ROOT) == []


def test_the_check_sees_a_lazy_import_upwards(tmp_path):
    """The same walk over a small tree with one bad import in a function body, and one allowed."""
    (tmp_path / "kernels" / "numba").mkdir(parents=True)
    (tmp_path / "kernels" / "numba" / "gemm.py").write_text(
        "import numpy as np\n\n\ndef tile():\n    from alexnet_cuda.archs import ARCHS\n    return ARCHS\n")
    (tmp_path / "loaders").mkdir()
    (tmp_path / "loaders" / "loader.py").write_text("from kernels import DEVICES\nfrom . import augment\n")
    for package in ("alexnet_cuda", "benchmarks"):
        (tmp_path / package).mkdir()
    assert violations(tmp_path) == ["kernels/numba/gemm.py:5 imports alexnet_cuda.archs"]


@pytest.mark.parametrize(("file", "source", "resolved"), [
    ("benchmarks/test_step.py", "from .conftest import BATCH", "benchmarks.conftest"),
    ("kernels/numba/conv2d.py", "from . import gemm", "kernels.numba"),
    ("kernels/numba/conv2d.py", "from ..contract import check_conv2d_forward", "kernels.contract"),
])
def test_relative_imports_resolve_to_their_package(tmp_path, file, source, resolved):
    path = tmp_path / file
    path.parent.mkdir(parents=True)
    path.write_text(source + "\n")
    assert [module for _, module in imported_modules(path, tmp_path)] == [resolved]
