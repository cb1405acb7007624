// conv2d_backward: given dy = ∂L/∂y of conv2d_forward(x, w, b, stride, pad, groups), compute
//   dx[img, ch, iy, ix] = Σ over filters fo of ch's group and taps (i, j) with
//                         iy = oy·stride − pad + i, ix = ox·stride − pad + j inside the output
//                         of w[fo, ci, i, j] · dy[img, fo, oy, ox]          (ci = ch mod C/G)
//   dw[fo, ci, i, j]    = Σ_{img, oy, ox} dy[img, fo, oy, ox] · xpad[img, g·C/G + ci, oy·s − pad + i, ox·s − pad + j]
//   db[fo]              = Σ_{img, oy, ox} dy[img, fo, oy, ox]
//
// Versions (kernels/cuda/conv2d.py; reference kernels/reference/conv2d.py; shapes in conv2d.cuh):
//   v1 direct: dx one thread per input element gathering the outputs whose window covers it (no
//      atomics); dw one thread per weight summing over N·OH·OW; db one block per filter.
//   v2 dx and dw as implicit GEMMs with shared-memory tiles (conv2d.cuh), one output per thread; dw
//      splits its K = N·OH·OW across blocks (split-K) into a partial buffer that a second kernel
//      adds in split order, so the result is the same on every run.
//   v3 v2 + register blocking. v4 v3 + double-buffered tiles, __launch_bounds__.
//   v5 v4 with warp tiles: float4 fragment reads from shared memory (gemm.cuh, WarpTiledThreads).
//   db is the v1 kernel in every version: it reads dy once and is bandwidth-bound already.
//
// Checked: python -m pytest tests/kernels/test_conformance.py -k conv2d_backward
//   (every version against the reference: g++ emulator here, `-m gpu` on a GPU; NVRTC for
//   sm_80/sm_90 without spills: tests/kernels/test_cuda_compile.py)
// Timed:   alexnet-cuda bench kernels --face cuda --op conv2d_backward --versions all

#include "conv2d.cuh"

// v1 dx. Thread e covers dx element e of N·C·H·W (out). Any 1-D grid covering N·C·H·W.
extern "C" __global__ void conv2d_backward_dx_v1(const float* __restrict__ dy, const float* __restrict__ w,
                                                 float* __restrict__ dx, CONV_SHAPE_PARAMS) {
    const ConvShape s = CONV_SHAPE;
    const int e = blockIdx.x * blockDim.x + threadIdx.x;
    if (e >= s.n * s.c * s.in_plane) return;
    const int ix = e % s.w, iy = (e / s.w) % s.h, ch = (e / s.in_plane) % s.c, img = e / (s.c * s.in_plane);
    const int g = ch / s.cg, ci = ch % s.cg;
    float acc = 0.0f;
    for (int fi = 0; fi < s.fg; ++fi) {
        const int fo = g * s.fg + fi;
        for (int i = 0; i < s.kh; ++i) {
            const int ty = iy + s.pad - i;  // = oy·stride for an output whose tap i lands on iy
            if (ty < 0 || ty % s.stride != 0 || ty / s.stride >= s.oh) continue;
            for (int j = 0; j < s.kw; ++j) {
                const int tx = ix + s.pad - j;
                if (tx < 0 || tx % s.stride != 0 || tx / s.stride >= s.ow) continue;
                acc += w[((fo * s.cg + ci) * s.kh + i) * s.kw + j] *
                       dy[((img * s.f + fo) * s.oh + ty / s.stride) * s.ow + tx / s.stride];
            }
        }
    }
    dx[e] = acc;
}

// v1 dw. Thread e covers dw element e of F·C/G·KH·KW (out). Any 1-D grid covering it.
extern "C" __global__ void conv2d_backward_dw_v1(const float* __restrict__ dy, const float* __restrict__ x,
                                                 float* __restrict__ dw, CONV_SHAPE_PARAMS) {
    const ConvShape s = CONV_SHAPE;
    const int e = blockIdx.x * blockDim.x + threadIdx.x;
    if (e >= s.f * s.filter) return;
    const int j = e % s.kw, i = (e / s.kw) % s.kh, ci = (e / s.taps) % s.cg, fo = e / s.filter;
    const int ch = (fo / s.fg) * s.cg + ci;
    float acc = 0.0f;
    for (int img = 0; img < s.n; ++img) {
        const float* plane = x + (img * s.c + ch) * s.in_plane;
        const float* grad = dy + (img * s.f + fo) * s.out_plane;
        for (int oy = 0; oy < s.oh; ++oy) {
            const int iy = oy * s.stride - s.pad + i;
            if (iy < 0 || iy >= s.h) continue;
            for (int ox = 0; ox < s.ow; ++ox) {
                const int ix = ox * s.stride - s.pad + j;
                if (ix < 0 || ix >= s.w) continue;
                acc += grad[oy * s.ow + ox] * plane[iy * s.w + ix];
            }
        }
    }
    dw[e] = acc;
}

// db, every version. Block fo (one per filter) reduces dy[:, fo, :, :] into db[fo] (out).
// Block: THREADS threads, a power of two. Each thread sums a strided slice in order, then a tree
// over shared memory adds the partial sums; the order is fixed, so db is the same on every run.
template <int THREADS>
__global__ void conv2d_backward_db(const float* __restrict__ dy, float* __restrict__ db, int n, int f,
                                   int out_plane) {
    static_assert((THREADS & (THREADS - 1)) == 0, "the tree reduction halves THREADS to 1");
    __shared__ float partial[THREADS];
    const int fo = blockIdx.x;
    const int count = n * out_plane;
    float acc = 0.0f;
    for (int e = threadIdx.x; e < count; e += THREADS) {
        const int img = e / out_plane, p = e % out_plane;
        acc += dy[(img * f + fo) * out_plane + p];
    }
    partial[threadIdx.x] = acc;
    __syncthreads();  // every partial sum is in shared memory before the tree reads it
    for (int half = THREADS / 2; half > 0; half /= 2) {
        if (threadIdx.x < half) partial[threadIdx.x] += partial[threadIdx.x + half];
        __syncthreads();  // this level is complete before the next one reads it
    }
    if (threadIdx.x == 0) db[fo] = partial[0];
}

// Writes dx[img, g·C/G + ci, iy, ix] for (ci, input position).
struct DataOutput {
    float* dx;
    ConvShape s;
    int g;
    __device__ __forceinline__ void store(int ci, int position, float value) const {
        const int img = position / s.in_plane, q = position % s.in_plane;
        dx[(img * s.c + g * s.cg + ci) * s.in_plane + q] = value;
    }
};

// Writes dw[g·F/G + fi, tap] of one split: straight into dw when there is one split, else into
// partial[split] (splits x F·C/G·KH·KW) for conv2d_backward_dw_reduce.
struct FilterOutput {
    float* target;
    ConvShape s;
    int g;
    __device__ __forceinline__ void store(int fi, int tap, float value) const {
        target[(g * s.fg + fi) * s.filter + tap] = value;
    }
};

// v2 (TM = TN = 1), v3, v4, v5 dx. Block (blockIdx.x, blockIdx.y, g = blockIdx.z) computes the BM x BN
// tile at (blockIdx.y·BM, blockIdx.x·BN) of dx[g] (C/G x N·H·W) (out), K = F/G·KH·KW.
// Grid: (ceil(N·H·W / BN), ceil(C/G / BM), G); block: (BM/TM)·(BN/TN) threads.
template <int BM, int BN, int BK, int TM, int TN, int SCHEDULE>
__device__ __forceinline__ void conv2d_backward_dx_gemm(const float* __restrict__ dy, const float* __restrict__ w,
                                                        float* __restrict__ dx, const ConvShape& s) {
    const int g = blockIdx.z;
    const DataWeights weights{w, s, g};
    const DataOutputGradient gradient{dy, s, g};
    const DataOutput out{dx, s, g};
    const int m0 = blockIdx.y * BM, n0 = blockIdx.x * BN;
    const int positions = s.n * s.in_plane, k = s.fg * s.taps;
    gemm<SCHEDULE, BM, BN, BK, TM, TN>(weights, gradient, out, s.cg, positions, 0, k, m0, n0);
}

// v2, v3, v4 dw. Block (blockIdx.x, blockIdx.y, blockIdx.z = g·splits + split) computes the BM x BN
// tile at (blockIdx.y·BM, blockIdx.x·BN) of dw[g] (F/G x C/G·KH·KW) summed over positions
// [split·chunk, min((split + 1)·chunk, N·OH·OW)) (out: dw, or partial[split] when splits > 1).
// Grid: (ceil(C/G·KH·KW / BN), ceil(F/G / BM), G·splits); chunk is a multiple of BK.
template <int BM, int BN, int BK, int TM, int TN, int SCHEDULE>
__device__ __forceinline__ void conv2d_backward_dw_gemm(const float* __restrict__ dy, const float* __restrict__ x,
                                                        float* __restrict__ target, int splits, int chunk,
                                                        const ConvShape& s) {
    const int g = blockIdx.z / splits, split = blockIdx.z % splits;
    const FilterOutputGradient gradient{dy, s, g};
    const FilterColumns columns{Im2col{x, s, g}};
    const FilterOutput out{target + split * s.f * s.filter, s, g};
    const int m0 = blockIdx.y * BM, n0 = blockIdx.x * BN;
    const int positions = s.n * s.out_plane;
    const int k_begin = split * chunk, k_end = min(positions, k_begin + chunk);
    gemm<SCHEDULE, BM, BN, BK, TM, TN>(gradient, columns, out, s.fg, s.filter, k_begin, k_end, m0, n0);
}

template <int BM, int BN, int BK, int TM, int TN>
__global__ void conv2d_backward_dx_tiled(const float* __restrict__ dy, const float* __restrict__ w,
                                         float* __restrict__ dx, CONV_SHAPE_PARAMS) {
    conv2d_backward_dx_gemm<BM, BN, BK, TM, TN, GEMM_TILED>(dy, w, dx, CONV_SHAPE);
}

template <int BM, int BN, int BK, int TM, int TN>
__global__ void __launch_bounds__((BM / TM) * (BN / TN), 2)
    conv2d_backward_dx_double_buffered(const float* __restrict__ dy, const float* __restrict__ w,
                                       float* __restrict__ dx, CONV_SHAPE_PARAMS) {
    conv2d_backward_dx_gemm<BM, BN, BK, TM, TN, GEMM_DOUBLE_BUFFERED>(dy, w, dx, CONV_SHAPE);
}

template <int BM, int BN, int BK, int TM, int TN>
__global__ void __launch_bounds__((BM / TM) * (BN / TN))
    conv2d_backward_dx_warp_tiled(const float* __restrict__ dy, const float* __restrict__ w,
                                  float* __restrict__ dx, CONV_SHAPE_PARAMS) {
    conv2d_backward_dx_gemm<BM, BN, BK, TM, TN, GEMM_WARP_TILED>(dy, w, dx, CONV_SHAPE);
}

template <int BM, int BN, int BK, int TM, int TN>
__global__ void conv2d_backward_dw_tiled(const float* __restrict__ dy, const float* __restrict__ x,
                                         float* __restrict__ target, int splits, int chunk, CONV_SHAPE_PARAMS) {
    conv2d_backward_dw_gemm<BM, BN, BK, TM, TN, GEMM_TILED>(dy, x, target, splits, chunk, CONV_SHAPE);
}

template <int BM, int BN, int BK, int TM, int TN>
__global__ void __launch_bounds__((BM / TM) * (BN / TN), 2)
    conv2d_backward_dw_double_buffered(const float* __restrict__ dy, const float* __restrict__ x,
                                       float* __restrict__ target, int splits, int chunk, CONV_SHAPE_PARAMS) {
    conv2d_backward_dw_gemm<BM, BN, BK, TM, TN, GEMM_DOUBLE_BUFFERED>(dy, x, target, splits, chunk, CONV_SHAPE);
}

template <int BM, int BN, int BK, int TM, int TN>
__global__ void __launch_bounds__((BM / TM) * (BN / TN))
    conv2d_backward_dw_warp_tiled(const float* __restrict__ dy, const float* __restrict__ x,
                                  float* __restrict__ target, int splits, int chunk, CONV_SHAPE_PARAMS) {
    conv2d_backward_dw_gemm<BM, BN, BK, TM, TN, GEMM_WARP_TILED>(dy, x, target, splits, chunk, CONV_SHAPE);
}

// Split-K second pass: dw[e] = Σ_{split = 0 .. splits−1} partial[split·count + e], in split order
// (out: dw, count = F·C/G·KH·KW elements). Any 1-D grid covering count.
extern "C" __global__ void conv2d_backward_dw_reduce(const float* __restrict__ partial, float* __restrict__ dw,
                                                     int splits, int count) {
    const int e = blockIdx.x * blockDim.x + threadIdx.x;
    if (e >= count) return;
    float acc = 0.0f;
    for (int split = 0; split < splits; ++split) acc += partial[split * count + e];
    dw[e] = acc;
}
