"""Benchmarks and kernel inspection for alexnet-cuda, installed with the package.

- shapes: AlexNet's layers (alexnet2012, alexnet-owt) and the op cases they give at a batch size.
- cases: inputs for each case (random, never zeros), how to call a face on them, which tolerance
  each output is validated with.
- counts: FLOPs and the fewest bytes each case must move: the roofline's two numbers.
- ceilings: measured copy bandwidth and SGEMM throughput (GPU through CuPy, CPU through NumPy).
- timer: CUDA-event timing with warm-up and rotating inputs larger than L2; a host timer for NumPy.
- vendor: cuBLAS (cupy.matmul) and cuDNN / PyTorch baselines on the same inputs.
- kernel_bench, step_bench: the runs behind `alexnet-cuda bench kernels|step`.
- report: rows, targets and verdicts, aligned tables, JSON.
- occupancy, resources: registers, spills, shared memory and theoretical occupancy on sm_90 for
  every kernel version of both GPU faces, for `alexnet-cuda inspect` (no GPU needed).
- summary: the markdown summary benchmarks/gpu_check.sh writes from its JSON results.

Nothing here imports CuPy, Numba or PyTorch at module level: each is imported where it is used, so
that the CPU-only paths work on a machine that has none of them working.
"""
