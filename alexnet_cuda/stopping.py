"""Stopping a long command cleanly when asked: Ctrl-C (SIGINT) or SIGTERM, which cluster schedulers
send before they preempt a job.

The first signal is only recorded; the command notices it at its next safe point (the trainer after
the step in flight, having written last.npz) and exits with 128 + the signal number, as a shell
reports a process killed by it: 130 for SIGINT, 143 for SIGTERM. A second signal raises StopNow
wherever the command is, so it ends at once and writes nothing more.

A job started in the background by a non-interactive shell has SIGINT ignored; it stays ignored,
as it would for any program, so Ctrl-C in that terminal still leaves the job alone.
"""

from __future__ import annotations

import signal

SIGNALS = (signal.SIGINT, signal.SIGTERM)


def exit_status(signum: int) -> int:
    return 128 + int(signum)


def signal_name(signum: int) -> str:
    return signal.Signals(signum).name


class StopNow(BaseException):
    """A signal that ends the command at once (a BaseException, so no `except Exception` holds it up)."""

    def __init__(self, signum: int):
        super().__init__(signal_name(signum))
        self.signum = signum


class StopSignals:
    """While entered, the first SIGINT or SIGTERM sets `signum` (and requested() turns True), and a
    second raises StopNow. With at_once=True the first raises StopNow already: for commands whose
    work is kept as it goes (prepare) and so has no safe point to wait for."""

    def __init__(self, at_once: bool = False):
        self.at_once = at_once
        self.signum: int | None = None
        self._previous: dict[int, object] = {}

    def requested(self) -> bool:
        return self.signum is not None

    def _handle(self, signum, frame) -> None:
        if self.signum is None:
            self.signum = signum
            if not self.at_once:
                return
        raise StopNow(signum)

    def __enter__(self) -> StopSignals:
        for signum in SIGNALS:
            previous = signal.getsignal(signum)
            if signum == signal.SIGINT and previous is signal.SIG_IGN:
                continue
            self._previous[signum] = previous
            signal.signal(signum, self._handle)
        return self

    def __exit__(self, *exc_info) -> None:
        for signum, previous in self._previous.items():
            signal.signal(signum, previous)
        self._previous = {}
