"""The three architectures: exact parameter counts, shapes and the paper's initialisation."""

import numpy as np
import pytest

from alexnet_cuda import archs
from alexnet_cuda.cli import main
from alexnet_cuda.model import Model, summarize, total_macs, total_parameters
from kernels import reference
from tests.training.support import TINY


@pytest.mark.parametrize(("name", "parameters", "gmac"), [
    ("alexnet2012", 60_965_224, 0.724),
    ("alexnet-owt", 61_100_840, 0.714),
])
def test_full_models_have_the_published_parameter_counts(name, parameters, gmac):
    arch = archs.get_arch(name)
    rows = summarize(archs.build_layers(arch, reference, 1000), arch.input_size)
    assert total_parameters(rows) == parameters
    assert round(total_macs(rows) / 1e9, 3) == gmac
    assert rows[-1].output_shape == (1000,)
    pool5 = next(row for row in rows if row.name == "pool5")
    assert pool5.output_shape == (256, 6, 6)


def test_summary_command_prints_the_exact_totals(capsys):
    assert main(["summary", "--arch", "alexnet2012"]) == 0
    assert "total parameters: 60,965,224" in capsys.readouterr().out
    assert main(["summary", "--arch", "alexnet-owt"]) == 0
    out = capsys.readouterr().out
    assert "total parameters: 61,100,840" in out
    assert "lrn1" not in out and "groups 2" not in out


def test_mini_has_every_layer_type_of_the_2012_network():
    mini = archs.get_arch("alexnet-mini")
    layers = archs.build_layers(mini, reference, 10)
    kinds = {layer.kind for layer in layers}
    assert {"conv", "relu", "lrn", "maxpool", "dropout", "linear"} <= kinds
    assert any(getattr(layer, "groups", 1) == 2 for layer in layers)
    assert sum(layer.kind == "linear" for layer in layers) == 3
    rows = summarize(layers, mini.input_size)
    assert rows[-1].output_shape == (10,)


def test_paper_initialisation_unit_biases_and_weight_scale():
    model = Model(archs.get_arch("alexnet2012"), 1000, reference, seed=0)
    biases = {layer.name: layer.params["b"] for layer in model.layers if layer.params}
    for name in ("conv2", "conv4", "conv5", "fc6", "fc7"):
        assert np.all(biases[name] == 1), name
    for name in ("conv1", "conv3", "fc8"):
        assert np.all(biases[name] == 0), name
    fc6 = next(layer for layer in model.layers if layer.name == "fc6").params["w"]
    assert fc6.dtype == np.float32
    assert abs(float(fc6.std()) - 0.01) < 1e-4 and abs(float(fc6.mean())) < 1e-4


def test_same_seed_same_initial_weights_and_another_seed_differs():
    a, b, c = (Model(TINY, 3, reference, seed=s) for s in (0, 0, 1))
    for (key, wa), (_, wb), (_, wc) in zip(a.named_arrays("params"), b.named_arrays("params"),
                                            c.named_arrays("params"), strict=True):
        assert np.array_equal(wa, wb), key
        if key.endswith(".w"):
            assert not np.array_equal(wa, wc), key


def test_unknown_arch_is_named():
    with pytest.raises(archs.ArchError, match="unknown architecture 'vgg16'; choose one of alexnet2012"):
        archs.get_arch("vgg16")
