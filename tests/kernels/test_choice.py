"""The measured kernel choice (kernels/choice.py) driven on the CPU with a stand-in timer: the fastest
valid candidate is chosen, a wrong one is refused and named, the cache is written, reread, keyed by
GPU, driver, face, op and shape, and survives a damaged file.

The face here is a small NumPy stand-in whose candidates are the reference's linear_forward, one of
them made wrong on purpose; tests/kernels/test_candidates.py runs the real candidates.
"""

import json
from types import SimpleNamespace

import numpy as np
import pytest

from kernels import choice, reference
from kernels.geometry import Candidate, Tile
from loaders import atomic

SMALL, WIDE, OTHER, WRONG = (Candidate(3, Tile(64, 64, 8, 4, 4)), Candidate(3, Tile(128, 128, 8, 8, 8)),
                             Candidate(4, Tile(64, 64, 16, 4, 4)), Candidate(4, Tile(128, 128, 8, 8, 8)))


class StandIn:
    """A face with linear_forward (the promoted version) and four candidates; each launcher notes its
    name when called, and the timer returns the time scripted for the launcher that `run` called."""

    def __init__(self, times, error=None, name="fake"):
        self.times, self.calls, self.timed = times, [], []
        self.NAME = name
        self.linear_forward = self._launcher(choice.PROMOTED, reference.linear_forward)
        wrong = error or (lambda y: y + 1e-2 * np.abs(y).max())  # a bias or an offset bug's size
        self.CANDIDATES = {"linear_forward": {
            SMALL: self._launcher(str(SMALL), reference.linear_forward),
            WIDE: self._launcher(str(WIDE), reference.linear_forward),
            OTHER: self._launcher(str(OTHER), reference.linear_forward),
            WRONG: self._launcher(str(WRONG), lambda *a: wrong(reference.linear_forward(*a))),
        }}

    def _launcher(self, name, function):
        def launch(*args, **kwargs):
            self.calls.append(name)
            return function(*args, **kwargs)

        return launch

    def timer(self, run):
        run()
        assert run.candidate == self.calls[-1]
        self.timed.append(run.candidate)
        return self.times[run.candidate]


def inputs(rows=3, inputs_=20, outputs=17, seed=0):
    rng = np.random.default_rng(seed)
    return (rng.standard_normal((rows, inputs_), np.float32), rng.standard_normal((outputs, inputs_), np.float32),
            rng.standard_normal(outputs, dtype=np.float32))


def chooser(face, path, gpu="H200", driver="13000", **kwargs):
    cache = choice.ChoiceCache(path, gpu, driver, atomic.write_text)
    return choice.Chooser(face, face.timer, cache, **kwargs)


TIMES = {choice.PROMOTED: 3.0, str(SMALL): 3.1, str(WIDE): 1.0, str(OTHER): 2.0, str(WRONG): 0.1}


def test_the_fastest_valid_candidate_is_chosen_and_the_wrong_one_refused_by_name(tmp_path):
    face = StandIn(TIMES)
    seen = []
    chosen = choice.ChosenFace(face, chooser(face, tmp_path / "choices.json", report=seen.append))
    x, w, b = inputs()
    y = chosen.linear_forward(x, w, b)
    np.testing.assert_array_equal(y, reference.linear_forward(x, w, b))
    (measurement,) = seen
    assert measurement.choice == str(WIDE)
    assert list(measurement.refused) == [str(WRONG)]  # the fastest by its time, but wrong: never timed
    assert "outside atol" in measurement.refused[str(WRONG)]
    assert str(WRONG) not in face.timed
    assert measurement.gain == pytest.approx(3.0)
    assert face.calls[-1] == str(WIDE)  # the call itself ran the choice


def test_a_candidate_within_the_tolerance_is_accepted():
    """Another summation order is not an error: a relative 1e-6 difference passes validation."""
    face = StandIn(TIMES, error=lambda y: y * np.float32(1 + 1e-6))
    expected = (reference.linear_forward(*inputs()),)
    actual = (face.CANDIDATES["linear_forward"][WRONG](*inputs()),)
    assert choice.refusal(actual, expected, choice.summation_lengths("linear_forward", inputs(), {})) is None


def test_a_tie_keeps_the_promoted_version(tmp_path):
    face = StandIn({**TIMES, str(WIDE): 3.0, str(OTHER): 3.0})
    assert chooser(face, tmp_path / "c.json").measure("linear_forward", inputs(), {}).choice == choice.PROMOTED


def test_a_candidate_that_raises_is_refused_with_its_error(tmp_path):
    face = StandIn(TIMES)
    face.CANDIDATES["linear_forward"][WIDE] = lambda *a: (_ for _ in ()).throw(RuntimeError("no kernel image"))
    measurement = chooser(face, tmp_path / "c.json").measure("linear_forward", inputs(), {})
    assert measurement.refused[str(WIDE)] == "RuntimeError: no kernel image"
    assert measurement.choice == str(OTHER)


def test_the_cache_is_written_reread_and_keyed_by_gpu_driver_face_op_and_shape(tmp_path):
    path = tmp_path / "nested" / "choices.json"
    first = StandIn(TIMES)
    choice.ChosenFace(first, chooser(first, path)).linear_forward(*inputs())
    entries = json.loads(path.read_text())["choices"]
    (key,) = entries
    assert key == "H200 | 13000 | fake | linear_forward | x=3x20 w=17x20 b=17"
    assert entries[key]["choice"] == str(WIDE) and entries[key]["ms"][choice.PROMOTED] == 3000.0

    later = StandIn({})  # a timer call would fail: the cached choice is used without measuring
    chosen = choice.ChosenFace(later, chooser(later, path))
    chosen.linear_forward(*inputs(seed=1))
    assert later.calls == [str(WIDE)] and later.timed == []

    for changed in (dict(gpu="A100"), dict(driver="12080"), dict(face_name="other"), dict(shape=(4, 20, 17))):
        face = StandIn(TIMES, name=changed.get("face_name", "fake"))
        gpu = {k: v for k, v in changed.items() if k in ("gpu", "driver")}
        chosen = choice.ChosenFace(face, chooser(face, path, **gpu))
        chosen.linear_forward(*inputs(*changed.get("shape", (3, 20, 17))))
        assert face.timed, f"{changed}: a choice made for another key was reused"
    assert len(json.loads(path.read_text())["choices"]) == 5


@pytest.mark.parametrize("damage", ["{not json", '{"format": 1, "choices": []}', '{"format": 1, "choices": '
                                    '{"k": {"ms": {}}}}', '[1, 2]', '{"format": 7, "choices": {}}'])
def test_a_damaged_cache_is_ignored_with_a_warning_and_rebuilt(tmp_path, damage):
    path = tmp_path / "choices.json"
    path.write_text(damage)
    face = StandIn(TIMES)
    with pytest.warns(UserWarning, match="choices.json: damaged kernel-choice cache ignored"):
        made = chooser(face, path)
    choice.ChosenFace(face, made).linear_forward(*inputs())
    assert json.loads(path.read_text())["format"] == choice.CACHE_FORMAT
    assert face.timed  # measured afresh


def test_the_cache_lives_under_xdg_cache_home(monkeypatch, tmp_path):
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path))
    assert choice.cache_path() == tmp_path / "alexnet-cuda" / "choices.json"
    monkeypatch.setenv("XDG_CACHE_HOME", "")
    monkeypatch.setenv("HOME", str(tmp_path / "home"))
    assert choice.cache_path() == tmp_path / "home" / ".cache" / "alexnet-cuda" / "choices.json"


def test_shape_keys_fill_in_defaults():
    x = np.zeros((2, 3, 8, 8), np.float32)
    w = np.zeros((4, 3, 3, 3), np.float32)
    b = np.zeros(4, np.float32)
    assert choice.shape_key("conv2d_forward", (x, w, b), {"pad": 1}) == choice.shape_key(
        "conv2d_forward", (x, w, b, 1, 1, 1), {})
    assert choice.shape_key("conv2d_forward", (x, w, b), {}) != choice.shape_key("conv2d_forward", (x, w, b, 2), {})


def test_other_ops_pass_through_to_the_face(tmp_path):
    face = StandIn(TIMES)
    face.relu_forward = reference.relu_forward
    face.to_device = None
    chosen = choice.ChosenFace(face, chooser(face, tmp_path / "c.json"))
    assert chosen.relu_forward is reference.relu_forward and chosen.to_device is None
    assert chosen.NAME == "fake (measured)"  # reports tell it from the face's promoted versions


def test_the_trainer_side_uses_the_atomic_writer_and_refuses_a_face_without_candidates(tmp_path):
    from alexnet_cuda import tuning

    face = SimpleNamespace(NAME="fake", CANDIDATES={"linear_forward": {}}, linear_forward=None)
    chosen = tuning.with_kernel_choice(face, "emu", "measured", cache_file=tmp_path / "c.json")
    assert chosen.chooser.cache._write_text is atomic.write_text
    assert "host times, not a GPU" in chosen.chooser.cache.key("f", "op", "s")
    assert tuning.with_kernel_choice(face, "emu", None) is face  # promoted by default off a GPU
    with pytest.raises(tuning.KernelChoiceError, match="reference face has no candidate kernels"):
        tuning.with_kernel_choice(reference, "cpu", "measured")


def test_validation_looks_at_every_output():
    """A backward's candidate with a wrong dw but the right dx and db is refused, naming the output."""
    dx, dw, db = (np.ones((3, 4), np.float32), np.ones((5, 4), np.float32), np.ones(5, np.float32))
    wrong = dw.copy()
    wrong[4, 3] = 1.5  # one element: an off-by-one at the last row and column
    lengths = [5, 3, 3]
    assert choice.refusal((dx, wrong, db), (dx, dw, db), lengths).startswith("output 1: 1 of 20 elements")
    assert choice.refusal((dx, dw), (dx, dw, db), lengths) is not None  # a missing output is refused, not passed


def test_summation_lengths_follow_the_ops_products():
    x, w, b = inputs(3, 20, 17)
    assert choice.summation_lengths("linear_forward", (x, w, b), {}) == [20]
    dy = np.zeros((3, 17), np.float32)
    assert choice.summation_lengths("linear_backward", (dy, x, w), {}) == [17, 3, 3]
    images, filters = np.zeros((2, 6, 9, 9), np.float32), np.zeros((4, 3, 3, 3), np.float32)
    assert choice.summation_lengths("conv2d_forward", (images, filters, np.zeros(4, np.float32)),
                                    {"stride": 2, "pad": 1, "groups": 2}) == [27]
    gradient = np.zeros((2, 4, 5, 5), np.float32)
    assert choice.summation_lengths("conv2d_backward", (gradient, images, filters, 2, 1, 2), {}) == [
        2 * 2 * 2, 50, 50]
