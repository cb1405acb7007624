"""The tools that check the kernels without running them on a GPU.

- nvrtc: compiles every .cu file of the CUDA C face with NVRTC for sm_80 and sm_90, the same text
  and options the face uses at run time, and reads ptxas's report (registers, spills, shared memory).
- emulator (.py, .hpp): compiles the same .cu files with g++ against a small CPU stand-in for CUDA
  and runs them on NumPy arrays, so every version of every CUDA C kernel runs against the reference.
- occupancy, resources: theoretical sm_90 occupancy, and the per-kernel report of both GPU faces
  behind `alexnet-cuda inspect`.
"""
