"""Weights in from and out to PyTorch: torchvision's AlexNet names, the round trip through safetensors
(against PyTorch's own forward where PyTorch is installed), the ImageNet class list, train --init, and
a one-line error for every bad file."""

import dataclasses
import fractions
import json
import pickle
import re
import sys

import numpy as np
import pytest
from PIL import Image
from safetensors.numpy import load_file, save_file

from alexnet_cuda import checkpoint, training, weights
from alexnet_cuda.archs import ALEXNET_2012, ALEXNET_MINI, ALEXNET_OWT
from alexnet_cuda.cli import main
from alexnet_cuda.imagenet import imagenet_classes
from alexnet_cuda.model import Model
from kernels import reference

# torchvision's AlexNet (torchvision/models/alexnet.py): the modules with parameters and their shapes.
TORCHVISION_ALEXNET = {
    "features.0.weight": (64, 3, 11, 11), "features.0.bias": (64,),
    "features.3.weight": (192, 64, 5, 5), "features.3.bias": (192,),
    "features.6.weight": (384, 192, 3, 3), "features.6.bias": (384,),
    "features.8.weight": (256, 384, 3, 3), "features.8.bias": (256,),
    "features.10.weight": (256, 256, 3, 3), "features.10.bias": (256,),
    "classifier.1.weight": (4096, 9216), "classifier.1.bias": (4096,),
    "classifier.4.weight": (4096, 4096), "classifier.4.bias": (4096,),
    "classifier.6.weight": (1000, 4096), "classifier.6.bias": (1000,),
}
OUR_NAMES = ["conv1.w", "conv1.b", "conv2.w", "conv2.b", "conv3.w", "conv3.b", "conv4.w", "conv4.b", "conv5.w",
             "conv5.b", "fc6.w", "fc6.b", "fc7.w", "fc7.b", "fc8.w", "fc8.b"]

# alexnet-owt's layers with a few channels, and a 3x3 conv1 at 15x15 (pool1 7, pool2 3, pool5 1x1): small
# enough for Numba's CUDA simulator (conv1 at alexnet-owt's 11x11/4 needs 63x63 inputs and takes 75 s
# there), and named as alexnet-owt is, since the names follow positions.
TINY_OWT_WIDTHS = (4, 6, 8, 6, 6)
TINY_OWT_HIDDEN = 16
TINY_OWT_CONV1 = dict(kernel=3, stride=1, pad=1)
TINY_OWT_SIZE = 15


def tiny_owt():
    widths = iter(TINY_OWT_WIDTHS)
    steps = []
    for kind, name, options in ALEXNET_OWT.steps:
        if kind == "conv":
            options = {**options, "out_channels": next(widths), **(TINY_OWT_CONV1 if name == "conv1" else {})}
        elif kind == "linear" and options["out_features"] != "classes":
            options = {**options, "out_features": TINY_OWT_HIDDEN}
        steps.append((kind, name, options))
    return dataclasses.replace(ALEXNET_OWT, name="owt-tiny", input_size=TINY_OWT_SIZE, resize_size=TINY_OWT_SIZE,
                               steps=tuple(steps))


def layer_named_shapes(arch, classes):
    """{"conv1.weight": shape, ...}: the names a network without a torchvision twin exports under."""
    suffix = {"w": "weight", "b": "bias"}
    return {f"{name.split('.')[0]}.{suffix[name.split('.')[1]]}": shape
            for name, shape in weights.parameter_shapes(arch, classes).items()}


def random_state_dict(shapes, seed=0):
    """He-scaled random weights and biases of these names and shapes, so that the logits depend on every
    layer (PyTorch's default init shrinks the signal layer by layer until fc8's bias dominates)."""
    rng = np.random.default_rng(seed)
    return {name: rng.standard_normal(shape, dtype=np.float32)
            * np.float32(np.sqrt(2.0 / np.prod(shape[1:])) if len(shape) > 1 else 0.1)
            for name, shape in shapes.items()}


def assert_same_logits(ours, theirs, what):
    assert np.abs(theirs[0] - theirs[1]).max() > 0.1 * np.abs(theirs).max(), "the logits must depend on the image"
    np.testing.assert_allclose(ours, theirs, rtol=1e-4, atol=1e-4 * np.abs(theirs).max(), err_msg=what)


def one_line_error(capsys, argv) -> str:
    assert main(argv) == 2
    error = capsys.readouterr().err.strip()
    assert len(error.splitlines()) == 1, error
    return error


# --- names and shapes ------------------------------------------------------------------------------


def test_alexnet_owt_takes_torchvision_names_and_shapes():
    names = weights.state_dict_names(ALEXNET_OWT)
    assert list(names) == OUR_NAMES
    assert list(names.values()) == list(TORCHVISION_ALEXNET)
    shapes = weights.parameter_shapes(ALEXNET_OWT, 1000)
    assert {names[ours]: shape for ours, shape in shapes.items()} == TORCHVISION_ALEXNET
    assert sum(np.prod(shape) for shape in TORCHVISION_ALEXNET.values()) == 61_100_840


def test_networks_without_a_torchvision_twin_use_their_layer_names():
    for arch in (ALEXNET_2012, ALEXNET_MINI):
        assert weights.layout(arch) == weights.LAYER_NAME_LAYOUT
        names = weights.state_dict_names(arch)
        assert names["conv2.w"] == "conv2.weight" and names["fc8.b"] == "fc8.bias"
    assert weights.parameter_shapes(ALEXNET_2012, 1000)["conv2.w"] == (256, 48, 5, 5)  # two groups
    assert weights.layout(tiny_owt()) == weights.TORCHVISION_LAYOUT


def test_the_imagenet_class_list():
    wnids, names = imagenet_classes()
    assert len(wnids) == len(set(wnids)) == 1000 and list(wnids) == sorted(wnids)
    assert all(re.fullmatch(r"n\d{8}", wnid) for wnid in wnids) and all(names)
    assert (wnids[0], names[0]) == ("n01440764", "tench, Tinca tinca")
    assert (wnids[281], names[281]) == ("n02123045", "tabby, tabby cat")
    assert (wnids[999], names[999]) == ("n15075141", "toilet tissue, toilet paper, bathroom tissue")


def test_torchvision_normalization_is_the_one_training_uses():
    from loaders.augment import MEAN, STD

    assert np.array_equal(weights.TORCHVISION_NORMALIZATION["mean"], MEAN)
    assert np.array_equal(weights.TORCHVISION_NORMALIZATION["std"], STD)


# --- the round trip without PyTorch ----------------------------------------------------------------


def torchvision_forward_on_reference_ops(state, images):
    """torchvision's AlexNet.forward in eval mode, module by module, on the reference ops: the spec the
    import is checked against where PyTorch is not installed."""
    def conv(x, index, stride=1, pad=0):
        return reference.relu_forward(reference.conv2d_forward(
            x, state[f"features.{index}.weight"], state[f"features.{index}.bias"], stride, pad))

    def linear(x, index):
        return reference.linear_forward(x, state[f"classifier.{index}.weight"], state[f"classifier.{index}.bias"])

    def pool(x):
        return reference.maxpool_forward(x, 3, 2)[0]

    x = pool(conv(images, 0, stride=4, pad=2))
    x = pool(conv(x, 3, pad=2))
    x = pool(conv(conv(conv(x, 6, pad=1), 8, pad=1), 10, pad=1))  # 6x6: the adaptive average pool is the identity
    x = reference.relu_forward(linear(reference.relu_forward(linear(x.reshape(len(x), -1), 1)), 4))
    return linear(x, 6)


def test_round_trip_through_safetensors_numpy_api(tmp_path):
    """Tensors saved under torchvision's names give torchvision's forward here, and go out again bit for bit."""
    state = random_state_dict(TORCHVISION_ALEXNET)
    save_file(state, str(tmp_path / "owt.safetensors"))
    assert main(["import-weights", str(tmp_path / "owt.safetensors"), "--arch", "alexnet-owt",
                 "-o", str(tmp_path / "owt.npz")]) == 0
    saved = checkpoint.load(tmp_path / "owt.npz")
    assert saved.meta["classes"][281] == "n02123045" and saved.meta["class_names"][281] == "tabby, tabby cat"

    images = np.random.default_rng(1).uniform(-2, 2, (2, 3, 224, 224)).astype(np.float32)
    logits = training.model_from_checkpoint(saved, reference).forward(images, training=False)
    assert_same_logits(logits, torchvision_forward_on_reference_ops(state, images), "import")

    assert main(["export-weights", str(tmp_path / "owt.npz"), "-o", str(tmp_path / "out.safetensors")]) == 0
    exported = load_file(str(tmp_path / "out.safetensors"))
    assert sorted(exported) == sorted(state)
    for name, value in state.items():
        assert exported[name].dtype == np.float32 and np.array_equal(exported[name], value), name


def test_an_export_carries_its_class_names_back_in(tmp_path, capsys):
    state = random_state_dict(layer_named_shapes(ALEXNET_MINI, 3))
    save_file(state, str(tmp_path / "mini.safetensors"))
    (tmp_path / "classes.txt").write_text("circle\nsquare\nstar\n")
    assert main(["import-weights", str(tmp_path / "mini.safetensors"), "--arch", "alexnet-mini", "--classes",
                 str(tmp_path / "classes.txt"), "-o", str(tmp_path / "mini.npz")]) == 0
    assert main(["export-weights", str(tmp_path / "mini.npz"), "-o", str(tmp_path / "back.safetensors")]) == 0
    assert sorted(load_file(str(tmp_path / "back.safetensors"))) == sorted(state)
    assert main(["import-weights", str(tmp_path / "back.safetensors"), "--arch", "alexnet-mini",
                 "-o", str(tmp_path / "again.npz")]) == 0
    assert checkpoint.load(tmp_path / "again.npz").meta["classes"] == ["circle", "square", "star"]
    save_file(random_state_dict(layer_named_shapes(ALEXNET_MINI, 4)), str(tmp_path / "four.safetensors"))
    assert main(["import-weights", str(tmp_path / "four.safetensors"), "--arch", "alexnet-mini",
                 "-o", str(tmp_path / "four.npz")]) == 0
    assert checkpoint.load(tmp_path / "four.npz").meta["classes"] == ["0", "1", "2", "3"]


def test_eval_and_predict_take_an_imported_checkpoint(tmp_path, capsys):
    from tests.training.support import write_image_folder

    data = write_image_folder(tmp_path / "data", classes=3, val_per_class=4)
    save_file(random_state_dict(layer_named_shapes(ALEXNET_MINI, 3)), str(tmp_path / "mini.safetensors"))
    (tmp_path / "classes.txt").write_text("class0\nclass1\nclass2\n")
    assert main(["import-weights", str(tmp_path / "mini.safetensors"), "--arch", "alexnet-mini", "--classes",
                 str(tmp_path / "classes.txt"), "-o", str(tmp_path / "mini.npz")]) == 0
    capsys.readouterr()
    assert main(["eval", "--checkpoint", str(tmp_path / "mini.npz"), "--data", str(data), "--device", "cpu"]) == 0
    top1 = re.search(r"images 12, loss [0-9.]+, top-1 ([0-9.]+%)", capsys.readouterr().out).group(1)
    assert main(["predict", str(data / "val"), "--checkpoint", str(tmp_path / "mini.npz"), "--json",
                 "--device", "cpu"]) == 0
    records = [json.loads(line) for line in capsys.readouterr().out.splitlines()]
    correct = sum(record["top"][0]["class"] == record["path"].split("/")[-2] for record in records)
    assert len(records) == 12 and f"{correct / 12:.2%}" == top1


# --- the round trip against PyTorch ----------------------------------------------------------------


def torchvision_alexnet(widths=(64, 192, 384, 256, 256), hidden=4096, classes=1000, pooled=6, conv1=None, seed=0):
    """torchvision's AlexNet built from torch.nn under the same module names (torchvision itself is not
    needed): features, avgpool, classifier."""
    torch = pytest.importorskip("torch", reason="PyTorch is not installed; the round trip against it is skipped")
    torch.manual_seed(seed)
    nn = torch.nn
    c1, c2, c3, c4, c5 = widths
    conv1 = conv1 or dict(kernel=11, stride=4, pad=2)

    class AlexNet(nn.Module):
        def __init__(self):
            super().__init__()
            self.features = nn.Sequential(
                nn.Conv2d(3, c1, kernel_size=conv1["kernel"], stride=conv1["stride"], padding=conv1["pad"]),
                nn.ReLU(inplace=True),
                nn.MaxPool2d(kernel_size=3, stride=2),
                nn.Conv2d(c1, c2, kernel_size=5, padding=2), nn.ReLU(inplace=True),
                nn.MaxPool2d(kernel_size=3, stride=2),
                nn.Conv2d(c2, c3, kernel_size=3, padding=1), nn.ReLU(inplace=True),
                nn.Conv2d(c3, c4, kernel_size=3, padding=1), nn.ReLU(inplace=True),
                nn.Conv2d(c4, c5, kernel_size=3, padding=1), nn.ReLU(inplace=True),
                nn.MaxPool2d(kernel_size=3, stride=2),
            )
            self.avgpool = nn.AdaptiveAvgPool2d((pooled, pooled))
            self.classifier = nn.Sequential(
                nn.Dropout(p=0.5), nn.Linear(c5 * pooled * pooled, hidden), nn.ReLU(inplace=True),
                nn.Dropout(p=0.5), nn.Linear(hidden, hidden), nn.ReLU(inplace=True),
                nn.Linear(hidden, classes),
            )

        def forward(self, x):
            return self.classifier(torch.flatten(self.avgpool(self.features(x)), 1))

    model = AlexNet().eval()
    with torch.no_grad():  # He-scaled, as random_state_dict explains
        for module in model.modules():
            if isinstance(module, nn.Conv2d | nn.Linear):
                module.weight.normal_(0.0, float(np.sqrt(2.0 / module.weight[0].numel())))
                module.bias.uniform_(-0.1, 0.1)
    return torch, model


def torch_logits(torch, model, images):
    with torch.no_grad():
        return model(torch.from_numpy(images)).numpy()


@pytest.mark.parametrize("face_name", ["reference", pytest.param("numba", marks=pytest.mark.slow)])
def test_a_pytorch_model_in_torchvision_layout_gives_the_same_logits_here(tmp_path, face_name):
    """A tiny torchvision-layout model (the Numba face runs in the simulator without a GPU)."""
    torch, model = torchvision_alexnet(TINY_OWT_WIDTHS, TINY_OWT_HIDDEN, classes=5, pooled=1, conv1=TINY_OWT_CONV1)
    import safetensors.torch

    from alexnet_cuda.backends import select_face
    from kernels.gpu_probe import has_gpu

    safetensors.torch.save_file(model.state_dict(), str(tmp_path / "tiny.safetensors"))
    arch = tiny_owt()
    tensors, _ = weights.read_state_dict(tmp_path / "tiny.safetensors")
    params = weights.params_from_state_dict(tensors, arch, "tiny.safetensors")
    if face_name == "reference":
        face = reference
    else:
        _, face = select_face("gpu" if has_gpu() else "sim", "numba")
    ours = Model(arch, 5, face)
    ours.load_arrays("params", params)
    images = np.random.default_rng(2).uniform(-2, 2, (2, 3, TINY_OWT_SIZE, TINY_OWT_SIZE)).astype(np.float32)
    logits = np.asarray(face.to_host(ours.forward(face.to_device(images), training=False)))
    assert_same_logits(logits, torch_logits(torch, model, images), face_name)


@pytest.mark.slow
def test_torchvision_alexnet_round_trip_and_predict(tmp_path, capsys):
    """Full-size: PyTorch -> safetensors -> import-weights -> predict, and export-weights -> PyTorch's
    load_state_dict, whose forward on the image predict preprocessed gives predict's probabilities."""
    torch, model = torchvision_alexnet()
    import safetensors.torch

    from loaders.augment import apply_plan, eval_plan
    from loaders.decode import decode_square

    safetensors.torch.save_file(model.state_dict(), str(tmp_path / "owt.safetensors"))
    assert main(["import-weights", str(tmp_path / "owt.safetensors"), "-o", str(tmp_path / "owt.npz")]) == 0
    images = np.random.default_rng(3).uniform(-2, 2, (2, 3, 224, 224)).astype(np.float32)
    imported = training.model_from_checkpoint(checkpoint.load(tmp_path / "owt.npz"), reference)
    assert_same_logits(imported.forward(images, training=False), torch_logits(torch, model, images), "import")

    assert main(["export-weights", str(tmp_path / "owt.npz"), "-o", str(tmp_path / "back.safetensors")]) == 0
    _, reloaded = torchvision_alexnet()
    reloaded.load_state_dict(safetensors.torch.load_file(str(tmp_path / "back.safetensors")))
    photos = []
    for index in range(2):
        pixels = np.random.default_rng(10 + index).integers(0, 256, (300, 400 - 50 * index, 3), dtype=np.uint8)
        photos.append(tmp_path / f"photo{index}.png")
        Image.fromarray(pixels).save(photos[-1])
    capsys.readouterr()
    assert main(["predict", *map(str, photos), "--checkpoint", str(tmp_path / "owt.npz"), "--top", "1000",
                 "--json", "--device", "cpu"]) == 0
    predicted = [json.loads(line) for line in capsys.readouterr().out.splitlines()]
    squares = np.stack([decode_square(str(photo), ALEXNET_OWT.resize_size) for photo in photos])
    inputs = apply_plan(squares, eval_plan(2, ALEXNET_OWT.resize_size, ALEXNET_OWT.input_size))
    probs = torch.softmax(torch.from_numpy(torch_logits(torch, reloaded, inputs)), dim=1).numpy()
    for record, row in zip(predicted, probs, strict=True):
        ours = np.zeros(1000)
        for entry in record["top"]:
            ours[entry["index"]] = entry["probability"]
        np.testing.assert_allclose(ours, row, rtol=1e-3, atol=1e-6, err_msg=record["path"])
        assert record["top"][0]["index"] == int(np.argmax(row))


# --- train --init ----------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def mini_checkpoint(tmp_path_factory):
    """alexnet-mini weights for the 10 synthetic classes, imported from a state dict under its layer names."""
    from loaders.synthetic import CLASSES

    folder = tmp_path_factory.mktemp("mini")
    save_file(random_state_dict(layer_named_shapes(ALEXNET_MINI, 10)), str(folder / "mini.safetensors"))
    (folder / "classes.txt").write_text("\n".join(sorted(CLASSES)))
    assert main(["import-weights", str(folder / "mini.safetensors"), "--arch", "alexnet-mini", "--classes",
                 str(folder / "classes.txt"), "-o", str(folder / "mini.npz")]) == 0
    return folder / "mini.npz"


def fine_tune(checkpoint_path, data, folder):
    """One step at a negligible learning rate: the run's weights stay where --init put them."""
    return main(["train", "--init", str(checkpoint_path), "--data", str(data), "--batch-size", "4", "--max-steps", "1",
                 "--lr", "1e-9", "--device", "cpu", "--no-progress", "--checkpoint-dir", str(folder)])


def test_train_init_keeps_the_weights_and_starts_fc8_afresh_for_other_classes(mini_checkpoint, tmp_path, capsys):
    from tests.training.support import write_image_folder

    assert fine_tune(mini_checkpoint, write_image_folder(tmp_path / "data", classes=3), tmp_path / "run") == 0
    out = capsys.readouterr().out
    assert re.search(r"initial weights\s+" + re.escape(str(mini_checkpoint)), out)
    assert "fc8 initialised afresh for 3 classes (the checkpoint's has 10)" in out
    start, tuned = checkpoint.load(mini_checkpoint), checkpoint.load(tmp_path / "run" / "last.npz")
    assert tuned.meta["arch"] == "alexnet-mini" and tuned.meta["config"]["init"] == str(mini_checkpoint)
    for name in ("conv1.w", "conv5.b", "fc6.w", "fc7.w"):
        np.testing.assert_allclose(tuned.params[name], start.params[name], atol=1e-6, err_msg=name)
    assert tuned.params["fc8.w"].shape == (3, 512)


def test_train_init_keeps_fc8_only_for_the_same_classes(mini_checkpoint, tmp_path, capsys):
    from tests.training.support import write_image_folder

    assert main(["synth", str(tmp_path / "synth"), "--train-per-class", "1", "--val-per-class", "1", "--quiet"]) == 0
    assert fine_tune(mini_checkpoint, tmp_path / "synth", tmp_path / "same") == 0
    assert "afresh" not in capsys.readouterr().out
    start, tuned = checkpoint.load(mini_checkpoint), checkpoint.load(tmp_path / "same" / "last.npz")
    np.testing.assert_allclose(tuned.params["fc8.w"], start.params["fc8.w"], atol=1e-6)

    assert fine_tune(mini_checkpoint, write_image_folder(tmp_path / "ten", classes=10), tmp_path / "other") == 0
    assert "fc8 initialised afresh: the data's classes (class0, class1, class2 and 7 more) are not the " \
           "checkpoint's (arrow, bars, crescent and 7 more)" in capsys.readouterr().out
    tuned = checkpoint.load(tmp_path / "other" / "last.npz")
    assert np.abs(tuned.params["fc8.w"] - start.params["fc8.w"]).max() > 0.01


def test_train_init_refuses_another_arch_and_resume_refuses_imported_weights(mini_checkpoint, capsys):
    error = one_line_error(capsys, ["train", "--init", str(mini_checkpoint), "--arch", "alexnet2012"])
    assert "alexnet-mini weights" in error and "--arch alexnet2012" in error
    error = one_line_error(capsys, ["train", "--resume", str(mini_checkpoint)])
    assert "imported weights" in error and f"--init {mini_checkpoint}" in error


# --- bad files -------------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def tiny_files(tmp_path_factory):
    folder = tmp_path_factory.mktemp("files")
    state = random_state_dict(layer_named_shapes(ALEXNET_MINI, 3))
    save_file(state, str(folder / "mini.safetensors"))
    return folder, state


def test_wrong_architecture_names_the_one_that_fits(tiny_files, tmp_path, capsys):
    folder, _ = tiny_files
    source = folder / "mini.safetensors"
    error = one_line_error(capsys, ["import-weights", str(source), "--arch", "alexnet-owt", "-o", str(tmp_path / "x.npz")])
    assert str(source) in error and "features.0.weight" in error and "pass --arch alexnet-mini" in error
    error = one_line_error(capsys, ["import-weights", str(source), "--arch", "alexnet2012", "-o", str(tmp_path / "x.npz")])
    assert "conv1.weight has shape (48, 3, 5, 5) where alexnet2012 has (96, 3, 11, 11)" in error
    assert "pass --arch alexnet-mini" in error
    assert not (tmp_path / "x.npz").exists()


def test_a_missing_or_misshapen_tensor_is_named(tiny_files, tmp_path, capsys):
    folder, state = tiny_files
    missing = {name: value for name, value in state.items() if name != "fc7.bias"}
    save_file(missing, str(tmp_path / "missing.safetensors"))
    error = one_line_error(capsys, ["import-weights", str(tmp_path / "missing.safetensors"), "--arch", "alexnet-mini",
                                    "-o", str(tmp_path / "x.npz")])
    assert str(tmp_path / "missing.safetensors") in error and "no tensor fc7.bias" in error
    misshapen = {**state, "conv3.weight": state["conv3.weight"][:, :-1]}
    save_file(misshapen, str(tmp_path / "misshapen.safetensors"))
    error = one_line_error(capsys, ["import-weights", str(tmp_path / "misshapen.safetensors"), "--arch",
                                    "alexnet-mini", "-o", str(tmp_path / "x.npz")])
    assert "conv3.weight has shape (128, 95, 3, 3) where alexnet-mini has (128, 96, 3, 3)" in error
    extra = {**state, "fc9.weight": state["fc8.weight"]}
    save_file(extra, str(tmp_path / "extra.safetensors"))
    error = one_line_error(capsys, ["import-weights", str(tmp_path / "extra.safetensors"), "--arch", "alexnet-mini",
                                    "-o", str(tmp_path / "x.npz")])
    assert "fc9.weight" in error
    assert not (tmp_path / "x.npz").exists()


def test_a_pickle_without_pytorch_says_what_to_do(tmp_path, capsys, monkeypatch):
    monkeypatch.setitem(sys.modules, "torch", None)  # as if PyTorch were not installed
    source = tmp_path / "alexnet.pth"
    source.write_bytes(pickle.dumps({"features.0.weight": [[1.0]]}))
    error = one_line_error(capsys, ["import-weights", str(source), "-o", str(tmp_path / "x.npz")])
    assert str(source) in error and "PyTorch" in error and "weights_only=True" in error and ".safetensors" in error


def test_neither_safetensors_nor_pytorch(mini_checkpoint, tmp_path, capsys):
    source = tmp_path / "notes.safetensors"
    source.write_text("these are not weights\n")
    error = one_line_error(capsys, ["import-weights", str(source), "-o", str(tmp_path / "x.npz")])
    assert str(source) in error and "neither a safetensors file" in error
    error = one_line_error(capsys, ["import-weights", str(tmp_path / "absent.safetensors"), "-o",
                                    str(tmp_path / "x.npz")])
    assert "no such file" in error
    truncated = tmp_path / "truncated.safetensors"
    save_file({"features.0.weight": np.zeros((64, 3, 11, 11), np.float32)}, str(truncated))
    truncated.write_bytes(truncated.read_bytes()[:-100])
    error = one_line_error(capsys, ["import-weights", str(truncated), "-o", str(tmp_path / "x.npz")])
    assert str(truncated) in error and "not a readable safetensors file" in error
    error = one_line_error(capsys, ["import-weights", str(mini_checkpoint), "-o", str(tmp_path / "x.npz")])
    assert str(mini_checkpoint) in error and "an alexnet-cuda checkpoint already" in error


def test_pytorch_files_load_with_weights_only(tiny_files, tmp_path, capsys):
    torch = pytest.importorskip("torch", reason="PyTorch is not installed; .pth files cannot be read without it")
    _, state = tiny_files
    torch.save({name: torch.from_numpy(value) for name, value in state.items()}, tmp_path / "mini.pth")
    assert main(["import-weights", str(tmp_path / "mini.pth"), "--arch", "alexnet-mini",
                 "-o", str(tmp_path / "mini.npz")]) == 0
    assert np.array_equal(checkpoint.load(tmp_path / "mini.npz").params["fc7.w"], state["fc7.weight"])

    # A Fraction is a class outside weights_only's allow-list: it must be refused, not unpickled.
    torch.save({"model": fractions.Fraction(1, 3)}, tmp_path / "object.pth")
    error = one_line_error(capsys, ["import-weights", str(tmp_path / "object.pth"), "-o", str(tmp_path / "x.npz")])
    assert str(tmp_path / "object.pth") in error and "weights_only=True" in error
    torch.save({"epoch": 3, "state_dict": {"a": torch.zeros(1)}}, tmp_path / "wrapped.pth")
    error = one_line_error(capsys, ["import-weights", str(tmp_path / "wrapped.pth"), "-o", str(tmp_path / "x.npz")])
    assert "not a state dict of tensors" in error and "state_dict" in error
