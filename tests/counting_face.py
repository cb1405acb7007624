"""An instrumented face for counting device-to-host reads: the NumPy reference, with its arrays made
DeviceArrays that record every conversion to a Python number, and a to_host that records every copy.
On a GPU each of those is a wait for the device; here they are counted instead."""

import numpy as np

from kernels import OPS, reference


class DeviceArray(np.ndarray):
    """A NumPy array standing in for one on a GPU: turning it into a Python number is a read."""

    face = None  # the CountingFace that made it

    def _read(self):
        DeviceArray.face.record("conversion")

    def __float__(self):
        self._read()
        return super().__float__()

    def __int__(self):
        self._read()
        return super().__int__()

    def __index__(self):
        self._read()
        return super().__index__()

    def __bool__(self):
        self._read()
        return super().__bool__()

    def __format__(self, spec):
        self._read()
        return super().__format__(spec)

    def item(self, *args):
        self._read()
        return super().item(*args)

    def tolist(self):
        self._read()
        return super().tolist()


class CountingFace:
    """The reference face with device arrays: every to_host and every conversion of a device array to a
    Python number is recorded with the phase the run is in."""

    NAME = "reference (counting reads)"
    xp = np

    def __init__(self):
        self.reads: list[tuple[int, str, str]] = []  # (step, phase, how)
        self.phase = "steps"
        self.trainer = None
        DeviceArray.face = self
        for op in OPS:
            setattr(self, op, self._on_device(getattr(reference, op)))

    def record(self, how):
        self.reads.append((self.trainer.position.step if self.trainer else -1, self.phase, how))

    @staticmethod
    def _device(value):
        if isinstance(value, np.ndarray):
            return np.asarray(value).view(DeviceArray)
        if isinstance(value, tuple):
            return tuple(CountingFace._device(v) for v in value)
        return value

    def _on_device(self, function):
        def run(*args, **kwargs):
            plain = [np.asarray(a).view(np.ndarray) if isinstance(a, np.ndarray) else a for a in args]
            return self._device(function(*plain, **kwargs))

        return run

    def to_device(self, array):
        return np.array(array, order="C").view(DeviceArray)

    def to_host(self, array):
        self.record("to_host")
        return np.array(array).view(np.ndarray)
