"""alexnet-cuda: AlexNet trained on hand-written kernels, with manual backprop and SGD."""

__version__ = "0.1.0"
