"""The training configuration: defaults per architecture, checks, and what a resumed run may change.

alexnet2012 and alexnet-owt default to the paper's recipe (batch 128, lr 0.01, momentum 0.9,
weight decay 5e-4, divide by 10 when validation stops improving, 90 epochs). alexnet-mini's
defaults are chosen so that `alexnet-cuda train` with no arguments learns the built-in synthetic
data in a few minutes on two CPU cores (see README.md for the measured run).
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass

from alexnet_cuda.archs import ARCHS, DEFAULT_ARCH
from alexnet_cuda.schedule import SCHEDULES

PAPER_DEFAULTS = dict(epochs=90, batch_size=128, lr=0.01, lr_schedule="plateau", lr_step_epochs=30,
                      plateau_patience=1, checkpoint_every=1000)
ARCH_DEFAULTS = {
    "alexnet2012": PAPER_DEFAULTS,
    "alexnet-owt": PAPER_DEFAULTS,
    # On a CPU a batch of 32 costs about the time per image of a larger one, and twice the steps per
    # epoch learn more in the few epochs a CPU run has; with the He initialisation the paper's lr of
    # 0.01 is stable there. One division by 10 after epoch 4 gives the default 5-epoch run a last,
    # fine-tuning epoch (and a 15-epoch run three).
    "alexnet-mini": dict(epochs=5, batch_size=32, lr=0.01, lr_schedule="step", lr_step_epochs=4,
                         plateau_patience=1, checkpoint_every=100),
    # Made for watching kernels learn, not for accuracy: on the synthetic shapes at 12x12, batch 16,
    # the reference reached 9.1%, 17.3% and 23.9% validation top-1 after epochs 1-3 with lr 0.02 held
    # constant, and 13.7%, 13.1% and 10.8% with lr 0.05 (chance: 10%).
    "tiny": dict(epochs=3, batch_size=16, lr=0.02, lr_schedule="step", lr_step_epochs=3,
                 plateau_patience=1, checkpoint_every=100),
}


@dataclass
class TrainConfig:
    arch: str = DEFAULT_ARCH
    data: str | None = None  # None: the built-in synthetic dataset
    device: str = "auto"
    kernels: str = "cuda"
    epochs: int = 0  # the fields left 0, "" or None here take the architecture's default (resolve)
    max_steps: int | None = None
    batch_size: int = 0
    lr: float = 0.0
    momentum: float = 0.9
    weight_decay: float = 5e-4
    lr_schedule: str = ""
    lr_step_epochs: int = 0
    plateau_patience: int = 0
    seed: int = 0
    workers: int = 0
    checkpoint_dir: str | None = None
    checkpoint_every: int | None = None  # steps between mid-epoch checkpoints; 0: only at epoch ends
    metrics_file: str | None = None
    log_every: int | None = None  # steps between reads of the losses; None: about one read a second
    init: str | None = None  # checkpoint whose weights a fresh run starts from (train --init)

    def as_dict(self) -> dict:
        return dataclasses.asdict(self)


# Flags whose value a resumed run may change: how and where it runs, and how far it goes. The rest
# define the optimisation; changing them would make the resumed run a different run.
RESUMABLE_OVERRIDES = ("data", "device", "kernels", "epochs", "max_steps", "workers", "checkpoint_dir",
                       "checkpoint_every", "metrics_file", "log_every")


class ConfigError(ValueError):
    """A configuration that cannot run; the message names the flag and what is allowed."""


def validate(config: TrainConfig) -> TrainConfig:
    def flag(name):
        return "--" + name.replace("_", "-")

    if config.arch not in ARCHS:
        raise ConfigError(f"--arch {config.arch!r}: unknown architecture; choose one of {', '.join(ARCHS)}")
    for name in ("epochs", "batch_size", "lr_step_epochs", "plateau_patience"):
        value = getattr(config, name)
        if value < 1:
            raise ConfigError(f"{flag(name)} {value}: must be at least 1")
    if config.max_steps is not None and config.max_steps < 1:
        raise ConfigError(f"--max-steps {config.max_steps}: must be at least 1 (leave it out to run every epoch)")
    if not config.lr > 0:
        raise ConfigError(f"--lr {config.lr}: must be a positive number")
    if not 0 <= config.momentum < 1:
        raise ConfigError(f"--momentum {config.momentum}: must be in [0, 1)")
    if not config.weight_decay >= 0:
        raise ConfigError(f"--weight-decay {config.weight_decay}: must be zero or positive")
    if config.lr_schedule not in SCHEDULES:
        raise ConfigError(f"--lr-schedule {config.lr_schedule!r}: choose one of {', '.join(SCHEDULES)}")
    if config.seed < 0:
        raise ConfigError(f"--seed {config.seed}: must be zero or positive")
    if config.workers < 0:
        raise ConfigError(f"--workers {config.workers}: must be zero (decode in this process) or positive")
    if config.checkpoint_every is not None and config.checkpoint_every < 0:
        raise ConfigError(f"--checkpoint-every {config.checkpoint_every}: must be zero (epoch ends only) or positive")
    if config.log_every is not None and config.log_every < 1:
        raise ConfigError(f"--log-every {config.log_every}: must be at least 1 (leave it out for about one read a "
                          f"second)")
    return config


def resolve(given: dict, checkpoint_config: dict | None = None) -> TrainConfig:
    """The configuration of a run from the flags given (None where a flag was left out).

    A fresh run fills what was left out from the architecture's defaults. A resumed run starts from
    the checkpoint's configuration; it may change the flags in RESUMABLE_OVERRIDES, and a flag that
    would change the optimisation is refused rather than silently ignored.
    """
    given = {key: value for key, value in given.items() if value is not None}
    if checkpoint_config is None:
        arch = given.get("arch", DEFAULT_ARCH)
        if arch not in ARCH_DEFAULTS:
            raise ConfigError(f"--arch {arch!r}: unknown architecture; choose one of {', '.join(ARCHS)}")
        return validate(TrainConfig(**{**ARCH_DEFAULTS[arch], **given}))
    known = {field.name for field in dataclasses.fields(TrainConfig)}
    config = TrainConfig(**{key: value for key, value in checkpoint_config.items() if key in known})
    changes = {}
    for key, value in given.items():
        if key in RESUMABLE_OVERRIDES:
            changes[key] = value
        elif key == "arch" and value != config.arch:
            raise ConfigError(
                f"--arch {value}: the checkpoint is of architecture {config.arch}, and its weights fit no other. "
                f"Leave --arch out (or pass --arch {config.arch}) to resume it, or start a new run without --resume"
            )
        elif value != getattr(config, key):
            raise ConfigError(
                f"--{key.replace('_', '-')} {value}: the checkpoint was trained with "
                f"{getattr(config, key)!r}, and a resumed run keeps its optimisation settings. Leave the flag "
                f"out to resume, or start a new run without --resume"
            )
    return validate(dataclasses.replace(config, **changes))
