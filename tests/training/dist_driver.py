"""Runs the `alexnet-cuda` command given in argv, for the data-parallel tests, with what the tests
need planted in it: DROPOUT=off builds every network with its dropout layers at p 0 (the identity),
so that runs on different numbers of ranks take the same steps; KILL_RANK=r KILL_AT_STEP=n makes
rank r kill itself with SIGKILL as its n-th step begins, as a crashed machine would; FAIL_RANK=r
FAIL_AT_STEP=n makes it raise an error there instead, as a bug would.
"""

import os
import signal
import sys


def plant(model_class, how: str, rank: int, at: int) -> None:
    set_step = model_class.set_step

    def set_step_or_fail(self, step):
        if self.rank == rank and step + 1 == at:
            if how == "KILL":
                os.kill(os.getpid(), signal.SIGKILL)
            raise RuntimeError(f"planted failure at step {at}")
        set_step(self, step)

    model_class.set_step = set_step_or_fail


def main() -> int:
    from alexnet_cuda.model import Model

    if os.environ.get("DROPOUT") == "off":
        build = Model.__init__

        def without_dropout(self, *args, **kwargs):
            build(self, *args, **kwargs)
            for dropout in self.dropouts:
                dropout.p = 0.0

        Model.__init__ = without_dropout
    for how in ("KILL", "FAIL"):
        if f"{how}_RANK" in os.environ:
            plant(Model, how, int(os.environ[f"{how}_RANK"]), int(os.environ[f"{how}_AT_STEP"]))
    from alexnet_cuda.cli import main as cli

    return cli(sys.argv[1:])


if __name__ == "__main__":
    sys.exit(main())
