// conv2d_forward: y[img, fo, oy, ox] = b[fo] + Σ_{ci, i, j} w[fo, ci, i, j] · x[img, g·C/G + ci,
// oy·stride − pad + i, ox·stride − pad + j] with g = fo / (F/G) and zero padding (see conv2d.cuh).
//
// Versions (kernels/cuda/conv2d.py launches them; the CPU reference is kernels/reference/conv2d.py):
//   v1 direct: one thread per output element, looping over its filter.
//   v2 implicit GEMM: y[g] = w[g] · cols[g] with shared-memory tiles, one output per thread; cols
//      is gathered from x while loading a tile, never stored.
//   v3 v2 + register blocking (TM x TN outputs per thread).
//   v4 v3 + double-buffered shared memory, 16-byte loads of the weights where aligned,
//      __launch_bounds__.
//   v5 v4 with warp tiles: float4 fragment reads from shared memory (gemm.cuh, WarpTiledThreads).
//
// Checked: python -m pytest tests/kernels/test_conformance.py -k conv2d_forward
//   (every version against the reference: g++ emulator here, `-m gpu` on a GPU; NVRTC for
//   sm_80/sm_90 without spills: tests/kernels/test_cuda_compile.py)
// Timed:   alexnet-cuda bench kernels --face cuda --op conv2d_forward --versions all

#include "conv2d.cuh"

// v1. Thread (blockIdx.x·blockDim.x + threadIdx.x) computes y element e of N·F·OH·OW (out).
// Inputs: x (N, C, H, W), w (F, C/G, KH, KW), b (F,). Any 1-D grid that covers N·F·OH·OW.
extern "C" __global__ void conv2d_forward_v1(const float* __restrict__ x, const float* __restrict__ w,
                                             const float* __restrict__ b, float* __restrict__ y,
                                             CONV_SHAPE_PARAMS) {
    const ConvShape s = CONV_SHAPE;
    const int e = blockIdx.x * blockDim.x + threadIdx.x;
    if (e >= s.n * s.f * s.out_plane) return;
    const int ox = e % s.ow, oy = (e / s.ow) % s.oh, fo = (e / s.out_plane) % s.f, img = e / (s.f * s.out_plane);
    const int first_channel = (fo / s.fg) * s.cg;
    const float* filter = w + fo * s.filter;
    float acc = 0.0f;
    for (int ci = 0; ci < s.cg; ++ci) {
        const float* plane = x + (img * s.c + first_channel + ci) * s.in_plane;
        for (int i = 0; i < s.kh; ++i) {
            const int iy = oy * s.stride - s.pad + i;
            if (iy < 0 || iy >= s.h) continue;
            for (int j = 0; j < s.kw; ++j) {
                const int ix = ox * s.stride - s.pad + j;
                if (ix < 0 || ix >= s.w) continue;
                acc += filter[(ci * s.kh + i) * s.kw + j] * plane[iy * s.w + ix];
            }
        }
    }
    y[e] = acc + b[fo];
}

// Writes one y element of group g: the bias is added here, in the GEMM's epilogue.
struct ForwardOutput {
    float* y;
    const float* b;
    ConvShape s;
    int g;
    __device__ __forceinline__ void store(int fi, int pos, float value) const {
        const int fo = g * s.fg + fi;
        const int img = pos / s.out_plane, p = pos % s.out_plane;
        y[(img * s.f + fo) * s.out_plane + p] = value + b[fo];
    }
};

// v2 (TM = TN = 1), v3, v4 and v5 (SCHEDULE, gemm.cuh). Block (blockIdx.x, blockIdx.y, g = blockIdx.z)
// computes the BM x BN tile of y[g] (F/G x N·OH·OW) at (blockIdx.y·BM, blockIdx.x·BN) (out).
// Grid: (ceil(N·OH·OW / BN), ceil(F/G / BM), G); block: (BM/TM)·(BN/TN) threads.
template <int BM, int BN, int BK, int TM, int TN, int SCHEDULE>
__device__ __forceinline__ void conv2d_forward_gemm(const float* __restrict__ x, const float* __restrict__ w,
                                                    const float* __restrict__ b, float* __restrict__ y,
                                                    const ConvShape& s) {
    const int g = blockIdx.z;
    const DenseOperand<true> weights(w + g * s.fg * s.filter, s.filter);  // w[g] is (F/G x C/G·KH·KW)
    const ForwardColumns columns{Im2col{x, s, g}};
    const ForwardOutput out{y, b, s, g};
    const int positions = s.n * s.out_plane;
    const int m0 = blockIdx.y * BM, n0 = blockIdx.x * BN;
    gemm<SCHEDULE, BM, BN, BK, TM, TN>(weights, columns, out, s.fg, positions, 0, s.filter, m0, n0);
}

template <int BM, int BN, int BK, int TM, int TN>
__global__ void conv2d_forward_tiled(const float* __restrict__ x, const float* __restrict__ w,
                                     const float* __restrict__ b, float* __restrict__ y, CONV_SHAPE_PARAMS) {
    conv2d_forward_gemm<BM, BN, BK, TM, TN, GEMM_TILED>(x, w, b, y, CONV_SHAPE);
}

template <int BM, int BN, int BK, int TM, int TN>
__global__ void __launch_bounds__((BM / TM) * (BN / TN), 2)
    conv2d_forward_double_buffered(const float* __restrict__ x, const float* __restrict__ w,
                                   const float* __restrict__ b, float* __restrict__ y, CONV_SHAPE_PARAMS) {
    conv2d_forward_gemm<BM, BN, BK, TM, TN, GEMM_DOUBLE_BUFFERED>(x, w, b, y, CONV_SHAPE);
}

// v5: register room for the 16 x 4 thread tile rather than v4's two blocks per SM.
template <int BM, int BN, int BK, int TM, int TN>
__global__ void __launch_bounds__((BM / TM) * (BN / TN))
    conv2d_forward_warp_tiled(const float* __restrict__ x, const float* __restrict__ w,
                              const float* __restrict__ b, float* __restrict__ y, CONV_SHAPE_PARAMS) {
    conv2d_forward_gemm<BM, BN, BK, TM, TN, GEMM_WARP_TILED>(x, w, b, y, CONV_SHAPE);
}
