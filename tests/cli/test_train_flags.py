"""The flags people bring from pytorch/examples' ImageNet script are aliases of ours, and
--log-every is checked like every other flag."""

import pytest

from alexnet_cuda import config
from alexnet_cuda.cli import build_parser


def _parse(*argv):
    return build_parser().parse_args(["train", *argv])


def test_pytorch_examples_flags_are_aliases():
    theirs = _parse("-b", "64", "-j", "4", "--wd", "0.0001", "-p", "10")
    ours = _parse("--batch-size", "64", "--workers", "4", "--weight-decay", "0.0001", "--log-every", "10")
    for name in ("batch_size", "workers", "weight_decay", "log_every"):
        assert getattr(theirs, name) == getattr(ours, name), name
    assert (ours.batch_size, ours.workers, ours.weight_decay, ours.log_every) == (64, 4, 0.0001, 10)
    assert _parse("--print-freq", "7").log_every == 7


def test_eval_takes_the_batch_and_worker_aliases_too():
    args = build_parser().parse_args(["eval", "--checkpoint", "x.npz", "-b", "16", "-j", "2"])
    assert (args.batch_size, args.workers) == (16, 2)


def test_log_every_is_checked_and_a_resumed_run_may_change_it():
    with pytest.raises(config.ConfigError, match=r"--log-every 0: must be at least 1"):
        config.resolve({"log_every": 0})
    assert config.resolve({}).log_every is None
    saved = config.resolve({"log_every": 5}).as_dict()
    assert config.resolve({"log_every": 50}, saved).log_every == 50
    assert config.resolve({}, saved).log_every == 5


def test_tiny_is_an_arch_with_defaults_of_its_own():
    tiny = config.resolve({"arch": "tiny"})
    assert (tiny.batch_size, tiny.epochs) == (16, 3)
    assert _parse("--device", "emu", "--arch", "tiny").device == "emu"
