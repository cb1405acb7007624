"""Runs the `alexnet-cuda` command given in argv with a pause planted inside it, for the signal
tests: PAUSE_IN=train|eval|prepare and PAUSE_AT=n pause the n-th training step between its forward
and its backward, the n-th validation batch before its forward, or the n-th chunk of prepare, after
printing "paused" and flushing, so that a signal sent on that line arrives in the middle of the work.
"""

import os
import sys
import time

PAUSE_SECONDS = 3.0


def pause_on_call(owner, name: str, at: int) -> None:
    original = getattr(owner, name)
    calls = 0

    def paused(*args, **kwargs):
        nonlocal calls
        calls += 1
        if calls == at:
            print(f"paused in {name}, call {at}", flush=True)
            time.sleep(PAUSE_SECONDS)
        return original(*args, **kwargs)

    setattr(owner, name, paused)


def main() -> int:
    where, at = os.environ["PAUSE_IN"], int(os.environ["PAUSE_AT"])
    if where == "train":
        from alexnet_cuda.model import Model

        pause_on_call(Model, "backward", at)
    elif where == "eval":
        from alexnet_cuda.model import Model

        pause_on_call(Model, "forward", at)
    else:
        from loaders import packed

        pause_on_call(packed, "_prepare_chunk", at)
    from alexnet_cuda.cli import main as cli

    return cli(sys.argv[1:])


if __name__ == "__main__":
    sys.exit(main())
