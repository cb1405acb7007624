"""The benchmarks' side of the measured kernel choice: what they time by default, and the rows a
face with a measured choice contributes beside the promoted versions."""

from types import SimpleNamespace

from alexnet_cuda.tuning import bench_choices
from benchmarks.kernel_bench import face_versions
from kernels import choice, reference


def test_both_choices_side_by_side_by_default_on_a_gpu_and_the_promoted_only_without_one():
    assert bench_choices(None, gpu=True) == ("promoted", "measured")
    assert bench_choices(None, gpu=False) == ("promoted",)
    assert bench_choices("measured", gpu=True) == ("measured",)
    assert bench_choices("promoted", gpu=True) == ("promoted",)


def test_a_measured_face_gives_one_measured_row_per_gemm_op_and_none_for_the_others(tmp_path):
    face = SimpleNamespace(NAME="cuda", CANDIDATES={}, VERSIONS={"linear_forward": {3: None}},
                           PROMOTED={"linear_forward": 3}, linear_forward=reference.linear_forward,
                           relu_forward=reference.relu_forward)
    cache = choice.ChoiceCache(tmp_path / "c.json", "gpu", "driver", lambda path, text: None)
    chosen = choice.ChosenFace(face, choice.Chooser(face, lambda run: 0.0, cache))
    (row,) = face_versions(chosen, "linear_forward", "all")
    assert row[0] == "measured" and row[1] is chosen.linear_forward and row[2] is False
    assert face_versions(chosen, "relu_forward", "all") == []
    assert chosen.NAME == "cuda (measured)"
    assert [label for label, _, _ in face_versions(face, "linear_forward", "promoted")] == ["3"]
