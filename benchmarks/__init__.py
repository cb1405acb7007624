"""Benchmarks for alexnet-cuda, installed with the package: the harness on top of every layer.

It may import everything below it (kernels, loaders, alexnet_cuda); nothing below imports it.

- shapes: the op cases of AlexNet's layers (alexnet2012, alexnet-owt) at a batch size, derived from
  the trainer's own architectures (alexnet_cuda.archs).
- cases: inputs for each case (random, never zeros), how to call a face on them, which tolerance
  each output is validated with.
- counts: FLOPs and the fewest bytes each case must move: the roofline's two numbers.
- ceilings: measured copy bandwidth and SGEMM throughput (GPU through CuPy, CPU through NumPy).
- timer: CUDA-event timing with warm-up and rotating inputs larger than L2; a host timer for NumPy.
- vendor: cuBLAS (cupy.matmul) and cuDNN / PyTorch baselines on the same inputs; torch_models:
  PyTorch's same networks for the step baseline.
- kernel_bench, step_bench, loader_bench: the runs behind `alexnet-cuda bench kernels|step|loader`.
- launch_overhead: host time per kernel launch of the Numba face on a GPU.
- report: rows, targets and verdicts, aligned tables, JSON.
- summary: the markdown summary gpu_check.sh writes from its JSON results.
- test_kernels.py, test_step.py, test_loader.py (with conftest.py): the same measurements as
  pytest-benchmark suites, `python -m pytest benchmarks/` (not part of the test suite).

Kernel inspection (registers, spills, occupancy) needs no GPU and lives with the compilers that
produce it, in kernels.toolchain. Nothing here imports CuPy, Numba or PyTorch at module level: each
is imported where it is used, so that the CPU-only paths work on a machine that has none of them.
"""
