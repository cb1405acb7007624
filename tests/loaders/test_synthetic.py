"""The built-in synthetic data: deterministic, written atomically, and not solvable by colour or by a
linear model on the pixels (a control with a class colour cue shows that the probes can succeed)."""

import os

import numpy as np
import pytest
from PIL import Image

import loaders
from loaders import synthetic
from loaders.synthetic import CLASSES, SynthSpec, render, write_synthetic

TINY = SynthSpec(train_per_class=2, val_per_class=1, size=24)


def test_an_image_is_a_function_of_seed_split_class_and_index():
    spec = SynthSpec(size=32)
    first = np.asarray(render(spec, "train", 3, 17))
    assert first.shape == (32, 32, 3) and first.dtype == np.uint8
    np.testing.assert_array_equal(first, np.asarray(render(spec, "train", 3, 17)))
    for other in (render(spec, "train", 3, 18), render(spec, "val", 3, 17), render(spec, "train", 4, 17),
                  render(SynthSpec(size=32, seed=1), "train", 3, 17)):
        assert np.abs(np.asarray(other, dtype=int) - first).mean() > 10


def test_the_folder_is_the_same_bytes_every_time(tmp_path):
    first = write_synthetic(tmp_path / "a", TINY, workers=2)
    second = write_synthetic(tmp_path / "b", TINY, workers=1)
    files = sorted(path.relative_to(first) for path in first.rglob("*.jpg"))
    assert len(files) == len(CLASSES) * 3
    assert sorted(path.relative_to(second) for path in second.rglob("*.jpg")) == files
    for name in files:
        assert (first / name).read_bytes() == (second / name).read_bytes()
    dataset = loaders.open_dataset(first)
    assert dataset.classes == sorted(CLASSES) and len(dataset.split("val")) == len(CLASSES)
    with Image.open(first / files[0]) as image:
        assert image.format == "JPEG" and image.size == (24, 24)


def test_an_interrupted_generation_leaves_nothing_that_looks_complete(tmp_path, monkeypatch):
    calls = []

    def failing_render(*args):
        calls.append(args)
        if len(calls) > 5:
            raise KeyboardInterrupt
        return render(*args)

    monkeypatch.setattr(synthetic, "render", failing_render)
    with pytest.raises(KeyboardInterrupt):
        write_synthetic(tmp_path / "data", TINY, workers=1)
    assert os.listdir(tmp_path) == []
    monkeypatch.undo()
    write_synthetic(tmp_path / "data", TINY, workers=1)
    assert (tmp_path / "data" / synthetic.MARKER).exists()


def test_nothing_is_overwritten(tmp_path):
    (tmp_path / "mine").mkdir()
    (tmp_path / "mine" / "notes.txt").write_text("keep")
    with pytest.raises(loaders.DataError, match="not the synthetic dataset"):
        write_synthetic(tmp_path / "mine", TINY)
    write_synthetic(tmp_path / "data", TINY)
    with pytest.raises(loaders.DataError):
        write_synthetic(tmp_path / "data", SynthSpec(train_per_class=3, val_per_class=1, size=24))
    assert (tmp_path / "mine" / "notes.txt").read_text() == "keep"


def test_ensure_synthetic_generates_once(tmp_path, monkeypatch):
    monkeypatch.setenv("ALEXNET_CUDA_DATA", str(tmp_path / "cache" / "synthetic"))
    assert loaders.default_data_dir() == tmp_path / "cache" / "synthetic"
    path = loaders.ensure_synthetic(spec=TINY, progress=False, workers=1)
    assert path == tmp_path / "cache" / "synthetic"
    stamp = (path / synthetic.MARKER).stat().st_mtime_ns
    assert loaders.ensure_synthetic(spec=TINY, progress=False) == path
    assert (path / synthetic.MARKER).stat().st_mtime_ns == stamp
    monkeypatch.delenv("ALEXNET_CUDA_DATA")
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "xdg"))
    assert loaders.default_data_dir() == tmp_path / "xdg" / "alexnet-cuda" / f"synthetic-v{synthetic.SYNTHETIC_VERSION}"


# ---- what a classifier can learn from it ----

PROBE_SIZE = 24  # pixels per side: 1,728 raw features


def _images(split, per_class):
    spec = SynthSpec(size=PROBE_SIZE)
    images = [np.asarray(render(spec, split, label, index), dtype=np.float64) / 255
              for label in range(len(CLASSES)) for index in range(per_class)]
    return np.stack(images), np.repeat(np.arange(len(CLASSES)), per_class)


@pytest.fixture(scope="module")
def probe_data():
    train, train_labels = _images("train", 100)
    held_out, held_out_labels = _images("val", 30)
    return train, train_labels, held_out, held_out_labels


def _nearest_mean_colour(train, train_labels, held_out):
    colours, test_colours = train.mean(axis=(1, 2)), held_out.mean(axis=(1, 2))
    centres = np.stack([colours[train_labels == label].mean(axis=0) for label in range(len(CLASSES))])
    return ((test_colours[:, None] - centres[None]) ** 2).sum(-1).argmin(1)


def _linear(train, train_labels, held_out, ridge=100.0):
    """Least-squares one-vs-rest linear classifier on standardized raw pixels (ridge, dual form)."""
    features, test = train.reshape(len(train), -1), held_out.reshape(len(held_out), -1)
    mean, std = features.mean(axis=0), features.std(axis=0) + 1e-6
    features, test = (features - mean) / std, (test - mean) / std
    targets = np.eye(len(CLASSES))[train_labels]
    dual = np.linalg.solve(features @ features.T + ridge * np.eye(len(features)), targets - targets.mean(axis=0))
    return (test @ (features.T @ dual)).argmax(1)


def test_mean_colour_and_a_linear_model_stay_near_chance(probe_data):
    train, train_labels, held_out, held_out_labels = probe_data
    chance = 1 / len(CLASSES)
    colour_accuracy = (_nearest_mean_colour(train, train_labels, held_out) == held_out_labels).mean()
    linear_accuracy = (_linear(train, train_labels, held_out) == held_out_labels).mean()
    # 300 held-out images: one standard error at chance is 0.017
    assert colour_accuracy < chance + 0.07, colour_accuracy
    assert linear_accuracy < chance + 0.12, linear_accuracy


def test_the_probes_do_find_a_colour_cue_when_there_is_one(probe_data):
    train, train_labels, held_out, held_out_labels = probe_data
    cue = np.random.default_rng(0).uniform(-0.5, 0.5, (len(CLASSES), 3))
    tinted = np.clip(train + cue[train_labels][:, None, None], 0, 1)
    tinted_held_out = np.clip(held_out + cue[held_out_labels][:, None, None], 0, 1)
    # a cue a little stronger than the colour spread between images (which it must stand out from);
    # each probe picks it up far beyond the margins allowed above
    colour_accuracy = (_nearest_mean_colour(tinted, train_labels, tinted_held_out) == held_out_labels).mean()
    linear_accuracy = (_linear(tinted, train_labels, tinted_held_out) == held_out_labels).mean()
    assert colour_accuracy > 1 / len(CLASSES) + 0.2, colour_accuracy
    assert linear_accuracy > 1 / len(CLASSES) + 0.2, linear_accuracy


def _small_cnn_accuracy(train, train_labels, held_out, held_out_labels, epochs=4, lr=0.01, batch=32):
    """Train conv 5x5 (24) → ReLU → pool → conv 3x3 (48) → ReLU → pool → linear on the NumPy reference
    face, by hand (SGD with momentum), and return the held-out accuracy."""
    from kernels import reference as face

    rng = np.random.default_rng(0)
    x_train = np.ascontiguousarray((train.transpose(0, 3, 1, 2) - 0.5) / 0.25, dtype=np.float32)
    x_held_out = np.ascontiguousarray((held_out.transpose(0, 3, 1, 2) - 0.5) / 0.25, dtype=np.float32)
    side = ((x_train.shape[2] - 4) // 2 - 2) // 2

    def he(shape, fan_in, gain=1.0):
        return (rng.standard_normal(shape) * gain * np.sqrt(2 / fan_in)).astype(np.float32)

    params = {"w1": he((24, 3, 5, 5), 75), "b1": np.zeros(24, np.float32), "w2": he((48, 24, 3, 3), 216),
              "b2": np.zeros(48, np.float32), "w3": he((10, 48 * side * side), 48 * side * side, 0.5),
              "b3": np.zeros(10, np.float32)}
    velocity = {name: np.zeros_like(value) for name, value in params.items()}

    def forward(x):
        r1 = face.relu_forward(face.conv2d_forward(x, params["w1"], params["b1"]))
        p1, a1 = face.maxpool_forward(r1, 2, 2)
        r2 = face.relu_forward(face.conv2d_forward(p1, params["w2"], params["b2"]))
        p2, a2 = face.maxpool_forward(r2, 2, 2)
        features = p2.reshape(len(x), -1)
        return face.linear_forward(features, params["w3"], params["b3"]), (x, r1, p1, a1, r2, p2, a2, features)

    for _ in range(epochs):
        order = rng.permutation(len(x_train))
        for start in range(0, len(order) - batch + 1, batch):
            chosen = order[start:start + batch]
            labels = train_labels[chosen].astype(np.int32)
            logits, (x, r1, p1, a1, r2, p2, a2, features) = forward(x_train[chosen])
            _, probs = face.softmax_xent_forward(logits, labels)
            d_features, grads_w3, grads_b3 = face.linear_backward(face.softmax_xent_backward(probs, labels),
                                                                  features, params["w3"])
            d_r2 = face.relu_backward(face.maxpool_backward(d_features.reshape(p2.shape), a2, r2.shape), r2)
            d_p1, grads_w2, grads_b2 = face.conv2d_backward(d_r2, p1, params["w2"])
            d_r1 = face.relu_backward(face.maxpool_backward(d_p1, a1, r1.shape), r1)
            _, grads_w1, grads_b1 = face.conv2d_backward(d_r1, x, params["w1"])
            grads = {"w1": grads_w1, "b1": grads_b1, "w2": grads_w2, "b2": grads_b2, "w3": grads_w3, "b3": grads_b3}
            for name, grad in grads.items():
                face.sgd_update(params[name], grad, velocity[name], lr)
    return (forward(x_held_out)[0].argmax(axis=1) == held_out_labels).mean()


@pytest.mark.slow
def test_a_small_cnn_learns_what_they_cannot(probe_data):
    """The same 1,000 training and 300 held-out images as the probes above: two conv layers trained
    for 4 epochs (124 SGD steps) on 24x24 pixels, in about 12 CPU seconds (measured: 0.50 held out)."""
    accuracy = _small_cnn_accuracy(*probe_data)
    assert accuracy > 1 / len(CLASSES) + 0.25, accuracy
