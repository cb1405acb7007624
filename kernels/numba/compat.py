"""A compatibility step for numba-cuda 0.30 under NumPy 2.5, taken before the first compile.

What breaks: numba-cuda 0.30.x registers an overload for `np.row_stack` whenever NumPy is 2.0 or
newer, in `numba.cuda.np.arrayobj`, a module the CUDA target imports lazily at its first compile.
NumPy 2.5 removed `row_stack` (deprecated since 2.0 as an alias of `vstack`), so that import raises
`AttributeError: module 'numpy' has no attribute 'row_stack'` and every kernel fails to compile for
a real GPU; the simulator never imports it and still runs. Numba itself (0.68) and numba-cuda-mlir
(0.6) register it only below NumPy 2.5. numba-cuda is in maintenance mode and declined the fix
(NVIDIA/numba-cuda#902, #916), so the fix lives here.

The step: only where NumPy lacks `row_stack` and the real CUDA target is in use, give NumPy a
`row_stack` for the duration of that one import, then take it away again, so nothing outside
numba-cuda's registry ever sees it. Remove this module when a numba-cuda release guards the
overload (or when the Numba face moves to numba-cuda-mlir): `tests/kernels/test_numba_compile.py`'s
`test_numpy_2_5_compat_step_is_still_needed` fails then, to say so.
"""

from __future__ import annotations

import importlib
import sys

import numpy as np

ARRAYOBJ = "numba.cuda.np.arrayobj"
# Spelled as a string and set with setattr: ruff's NPY201 fix would rewrite `np.row_stack` in this
# file to `np.vstack`, and the step would then replace and delete NumPy's real vstack.
REMOVED_ALIAS = "row_stack"


def needed() -> bool:
    return not hasattr(np, REMOVED_ALIAS) and ARRAYOBJ not in sys.modules


def _row_stack(tup, *, dtype=None, casting="same_kind"):
    """Stands in for NumPy's removed alias during the import. It is its own function, not
    `np.vstack`, so that numba-cuda's registration does not overload `vstack` a second time."""
    return np.vstack(tup, dtype=dtype, casting=casting)


def before_first_compile() -> bool:
    """Import numba-cuda's array registry with `np.row_stack` present, if NumPy lacks it; returns
    whether the step was taken. Call before the first compile for the real CUDA target."""
    if not needed():
        return False
    setattr(np, REMOVED_ALIAS, _row_stack)
    try:
        importlib.import_module(ARRAYOBJ)
    finally:
        delattr(np, REMOVED_ALIAS)
    return True
