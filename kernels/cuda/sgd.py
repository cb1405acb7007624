"""sgd_update of the `cuda` face: launchers for sgd.cu.

    v1  one thread per parameter
    v2  float4: one thread per four parameters (promoted); the v1 kernel where an array is not
        16-byte aligned (runtime.launch_elementwise)
"""

from __future__ import annotations

from kernels.contract import check_sgd_update
from kernels.cuda.runtime import declare, f32, launch_elementwise, require_int32_indexable, spec

SGD = {v: declare("sgd_update", v, "main", "sgd.cu", f"sgd_update_v{v}") for v in (1, 2)}


def _sgd_update(version: int):
    def sgd_update(w, grad, velocity, lr, momentum=0.9, weight_decay=5e-4):
        """In place: v ← momentum·v − weight_decay·lr·w − lr·grad; w ← w + v. Returns None."""
        lr, momentum, weight_decay = check_sgd_update(spec(), w, grad, velocity, lr, momentum, weight_decay)
        require_int32_indexable(w=w)
        # weight_decay·lr in double, rounded once, as the reference forms it.
        launch_elementwise(version, SGD, w.size, (w, grad, velocity), (f32(lr), f32(momentum), f32(weight_decay * lr)))

    sgd_update.__name__ = sgd_update.__qualname__ = f"sgd_update_v{version}"
    return sgd_update


VERSIONS = {"sgd_update": {v: _sgd_update(v) for v in (1, 2)}}
