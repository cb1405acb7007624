"""The layers of AlexNet, each a forward/backward pair that calls one face of the op contract.

A layer keeps what its backward needs from the last training forward (its input, output, mask
or argmax) and nothing else; backward returns the gradient with respect to the input and leaves
the gradients of its parameters in `grads`. Parameters, gradients and saved activations are arrays
of the face's kind (NumPy on the CPU, CuPy on a GPU), so nothing crosses to the host.

Every layer can be driven on its own, which is how the per-layer benchmark times them:

    y = layer.forward(x, training=True)
    dx = layer.backward(dy)

`output_shape(input_shape)` and `macs(input_shape)` (multiply-adds of one forward, per batch)
need no arrays; `summary` and the benchmarks use them.
"""

from __future__ import annotations

import math

from kernels.contract import conv_output_size, pool_output_size


class Layer:
    """A step of the network. Subclasses set `name`, and `params` when they have weights."""

    kind = "layer"

    def __init__(self, name: str, face):
        self.name = name
        self.face = face
        self.params: dict[str, object] = {}  # name -> face array, e.g. {"w": ..., "b": ...}
        self.grads: dict[str, object] = {}  # same keys, written by backward

    def forward(self, x, training: bool):
        raise NotImplementedError

    def backward(self, dy):
        raise NotImplementedError

    def output_shape(self, input_shape: tuple[int, ...]) -> tuple[int, ...]:
        return tuple(input_shape)

    def macs(self, input_shape: tuple[int, ...]) -> int:
        return 0

    def parameter_shapes(self) -> dict[str, tuple[int, ...]]:
        return {}

    def describe(self) -> str:
        return self.kind

    def forget(self) -> None:
        """Drop the activations kept for backward (they can be large)."""
        self._saved = None

    def _require_saved(self):
        saved = getattr(self, "_saved", None)
        if saved is None:
            raise RuntimeError(f"{self.name}: backward called without a training forward before it")
        return saved


class Conv2d(Layer):
    kind = "conv"

    def __init__(self, name, face, in_channels, out_channels, kernel, stride=1, pad=0, groups=1):
        super().__init__(name, face)
        self.in_channels, self.out_channels = in_channels, out_channels
        self.kernel, self.stride, self.pad, self.groups = kernel, stride, pad, groups

    def parameter_shapes(self):
        return {
            "w": (self.out_channels, self.in_channels // self.groups, self.kernel, self.kernel),
            "b": (self.out_channels,),
        }

    def forward(self, x, training):
        y = self.face.conv2d_forward(x, self.params["w"], self.params["b"], self.stride, self.pad, self.groups)
        self._saved = x if training else None
        return y

    def backward(self, dy):
        x = self._require_saved()
        dx, self.grads["w"], self.grads["b"] = self.face.conv2d_backward(
            dy, x, self.params["w"], self.stride, self.pad, self.groups
        )
        return dx

    def output_shape(self, input_shape):
        n, _, h, w = input_shape
        size = conv_output_size
        return (n, self.out_channels, size(h, self.kernel, self.stride, self.pad),
                size(w, self.kernel, self.stride, self.pad))

    def macs(self, input_shape):
        n, f, oh, ow = self.output_shape(input_shape)
        return n * f * oh * ow * (self.in_channels // self.groups) * self.kernel * self.kernel

    def describe(self):
        text = f"conv {self.out_channels}x{self.kernel}x{self.kernel}/{self.stride}"
        if self.pad:
            text += f" pad {self.pad}"
        if self.groups > 1:
            text += f" groups {self.groups}"
        return text


class Linear(Layer):
    kind = "linear"

    def __init__(self, name, face, in_features, out_features):
        super().__init__(name, face)
        self.in_features, self.out_features = in_features, out_features

    def parameter_shapes(self):
        return {"w": (self.out_features, self.in_features), "b": (self.out_features,)}

    def forward(self, x, training):
        y = self.face.linear_forward(x, self.params["w"], self.params["b"])
        self._saved = x if training else None
        return y

    def backward(self, dy):
        x = self._require_saved()
        dx, self.grads["w"], self.grads["b"] = self.face.linear_backward(dy, x, self.params["w"])
        return dx

    def output_shape(self, input_shape):
        return (input_shape[0], self.out_features)

    def macs(self, input_shape):
        return input_shape[0] * self.in_features * self.out_features

    def describe(self):
        return f"linear {self.in_features}->{self.out_features}"


class ReLU(Layer):
    kind = "relu"

    def forward(self, x, training):
        y = self.face.relu_forward(x)
        self._saved = y if training else None
        return y

    def backward(self, dy):
        return self.face.relu_backward(dy, self._require_saved())


class LRN(Layer):
    """Local response normalization across channels, the paper's form (alpha not divided by size)."""

    kind = "lrn"

    def __init__(self, name, face, size=5, alpha=1e-4, beta=0.75, k=2.0):
        super().__init__(name, face)
        self.constants = dict(size=size, alpha=alpha, beta=beta, k=k)

    def forward(self, x, training):
        y, scale = self.face.lrn_forward(x, **self.constants)
        self._saved = (x, y, scale) if training else None
        return y

    def backward(self, dy):
        x, y, scale = self._require_saved()
        return self.face.lrn_backward(dy, x, y, scale, **self.constants)

    def describe(self):
        c = self.constants
        return f"lrn size {c['size']} alpha {c['alpha']:g} beta {c['beta']:g} k {c['k']:g}"


class MaxPool(Layer):
    kind = "maxpool"

    def __init__(self, name, face, kernel=3, stride=2):
        super().__init__(name, face)
        self.kernel, self.stride = kernel, stride

    def forward(self, x, training):
        y, argmax = self.face.maxpool_forward(x, self.kernel, self.stride)
        self._saved = (argmax, tuple(x.shape)) if training else None
        return y

    def backward(self, dy):
        argmax, input_shape = self._require_saved()
        return self.face.maxpool_backward(dy, argmax, input_shape, self.kernel, self.stride)

    def output_shape(self, input_shape):
        n, c, h, w = input_shape
        return (n, c, pool_output_size(h, self.kernel, self.stride), pool_output_size(w, self.kernel, self.stride))

    def describe(self):
        return f"maxpool {self.kernel}/{self.stride}"


class Dropout(Layer):
    """Inverted dropout; the identity when not training.

    The mask comes from Philox with key `seed` and counter offset `offset`; the model sets a fresh
    offset before every training step, so the masks are a function of (seed, step) alone (and of the
    rank in a data-parallel run, alexnet_cuda.model.RANK_SHIFT).
    """

    kind = "dropout"

    def __init__(self, name, face, p=0.5, seed=0):
        super().__init__(name, face)
        self.p, self.seed, self.offset = p, seed, 0

    def forward(self, x, training):
        if not training:
            self._saved = None
            return x
        y, mask = self.face.dropout_forward(x, self.p, self.seed, self.offset)
        self._saved = mask
        return y

    def backward(self, dy):
        return self.face.dropout_backward(dy, self._require_saved(), self.p)

    def describe(self):
        return f"dropout p {self.p:g}"


class Flatten(Layer):
    """(N, C, H, W) -> (N, C·H·W) between the last pool and the first linear layer: a reshape, no copy."""

    kind = "flatten"

    def forward(self, x, training):
        self._saved = tuple(x.shape) if training else None
        return x.reshape(x.shape[0], -1)

    def backward(self, dy):
        return dy.reshape(self._require_saved())

    def output_shape(self, input_shape):
        return (input_shape[0], math.prod(input_shape[1:]))


class SoftmaxCrossEntropy:
    """The loss: mean softmax cross-entropy of logits (N, K) against integer labels (N,).

    Not a Layer: it takes labels and returns a 0-d loss array (of the face's kind, so a GPU run
    does not synchronize here), and its backward starts the chain with no incoming gradient.
    """

    name = "loss"
    kind = "softmax_xent"

    def __init__(self, face):
        self.face = face
        self._saved = None

    def forward(self, logits, labels):
        """Returns (loss, probs)."""
        loss, probs = self.face.softmax_xent_forward(logits, labels)
        self._saved = (probs, labels)
        return loss, probs

    def backward(self):
        if self._saved is None:
            raise RuntimeError("loss: backward called without a forward before it")
        probs, labels = self._saved
        return self.face.softmax_xent_backward(probs, labels)

    def forget(self) -> None:
        self._saved = None


def parameter_count(layer: Layer) -> int:
    return sum(math.prod(shape) for shape in layer.parameter_shapes().values())


def zeros_like_params(layer: Layer) -> dict[str, object]:
    """Face arrays of zeros shaped like the layer's parameters (momentum buffers start at zero)."""
    xp = layer.face.xp
    return {name: xp.zeros(value.shape, dtype=value.dtype) for name, value in layer.params.items()}

