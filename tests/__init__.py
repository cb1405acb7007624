"""The test suite; its folders mirror the packages: kernels, loaders, training (alexnet_cuda's model and
trainer), cli and bench (the harness). Helpers shared by several folders sit here (images.py).
"""
