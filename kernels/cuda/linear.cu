// linear_forward and linear_backward: x (N, I), w (O, I), b (O,), dy (N, O), row-major float32.
//   forward  y  (N x O) = x · wᵀ + b     "NT": both operands run along K = I
//   data     dx (N x I) = dy · w          "NN": K = O
//   filter   dw (O x I) = dyᵀ · x         "TN": K = N
//   bias     db (O)     = Σ_n dy[n, :]
//
// Versions (kernels/cuda/linear.py; reference kernels/reference/linear.py):
//   v1 naive: one thread per output element, a 2-D grid with x along the output's columns.
//   v2 shared-memory tiles, one output per thread (gemm.cuh, gemm_tiled with a 1 x 1 thread tile).
//   v3 v2 + 2-D register tiles (gemm_tiled, TM x TN).
//   v4 v3 + double-buffered tiles and float4 loads (gemm_double_buffered), __launch_bounds__.
//   v5 v4 split into warp tiles, float4 fragment reads from shared memory (WarpTiledThreads).
//   db is one thread per column in every version: it reads dy once, coalesced across columns.
// Split-K (candidates of the measured choice, geometry.LINEAR_SPLITS): every tiled kernel reduces
// k in [blockIdx.z·chunk, (blockIdx.z + 1)·chunk) into its own partial product, and
// linear_backward_db, reading the partials as the rows of a splits x M·N matrix, adds them in split
// order, so the result is the same in every run.
//
// Checked: python -m pytest tests/kernels/test_conformance.py -k linear
//   (every version against the reference: g++ emulator here, `-m gpu` on a GPU; NVRTC for
//   sm_80/sm_90 without spills: tests/kernels/test_cuda_compile.py)
// Timed:   alexnet-cuda bench kernels --face cuda --op linear_forward --op linear_backward --versions all

#include "gemm.cuh"

// v1 forward. Thread (row = blockIdx.y·blockDim.y + threadIdx.y, col = blockIdx.x·blockDim.x +
// threadIdx.x) computes y[row, col] (out). Any 2-D grid covering O columns x N rows.
extern "C" __global__ void linear_forward_v1(const float* __restrict__ x, const float* __restrict__ w,
                                             const float* __restrict__ b, float* __restrict__ y, int rows,
                                             int inputs, int outputs) {
    const int col = blockIdx.x * blockDim.x + threadIdx.x, row = blockIdx.y * blockDim.y + threadIdx.y;
    if (row >= rows || col >= outputs) return;
    float acc = 0.0f;
    for (int k = 0; k < inputs; ++k) acc += x[row * inputs + k] * w[col * inputs + k];
    y[row * outputs + col] = acc + b[col];
}

// v1 dx: thread (row, col) computes dx[row, col] (out), row < N, col < I.
extern "C" __global__ void linear_backward_dx_v1(const float* __restrict__ dy, const float* __restrict__ w,
                                                 float* __restrict__ dx, int rows, int inputs, int outputs) {
    const int col = blockIdx.x * blockDim.x + threadIdx.x, row = blockIdx.y * blockDim.y + threadIdx.y;
    if (row >= rows || col >= inputs) return;
    float acc = 0.0f;
    for (int k = 0; k < outputs; ++k) acc += dy[row * outputs + k] * w[k * inputs + col];
    dx[row * inputs + col] = acc;
}

// v1 dw: thread (row, col) computes dw[row, col] (out), row < O, col < I.
extern "C" __global__ void linear_backward_dw_v1(const float* __restrict__ dy, const float* __restrict__ x,
                                                 float* __restrict__ dw, int rows, int inputs, int outputs) {
    const int col = blockIdx.x * blockDim.x + threadIdx.x, row = blockIdx.y * blockDim.y + threadIdx.y;
    if (row >= outputs || col >= inputs) return;
    float acc = 0.0f;
    for (int k = 0; k < rows; ++k) acc += dy[k * outputs + row] * x[k * inputs + col];
    dw[row * inputs + col] = acc;
}

// db, every version: thread col sums dy[:, col] over the N rows in order into db[col] (out).
// Any 1-D grid covering O. Split-K also adds its partial products with it (rows: splits, O: M·N).
extern "C" __global__ void linear_backward_db(const float* __restrict__ dy, float* __restrict__ db, int rows,
                                              int outputs) {
    const int col = blockIdx.x * blockDim.x + threadIdx.x;
    if (col >= outputs) return;
    float acc = 0.0f;
    for (int row = 0; row < rows; ++row) acc += dy[row * outputs + col];
    db[col] = acc;
}

// y[m, n] = value + b[n]: the bias rides in the forward product's epilogue (of split 0 only, when
// K is split, so that the split sum adds it once).
struct BiasedOutput {
    float* y;
    const float* b;
    int ld;
    bool with_bias;
    __device__ __forceinline__ void store(int m, int n, float value) const {
        y[m * ld + n] = with_bias ? value + b[n] : value;
    }
};

struct PlainOutput {
    float* c;
    int ld;
    __device__ __forceinline__ void store(int m, int n, float value) const { c[m * ld + n] = value; }
};

// Which product a tiled kernel computes; every one is C (M x N) = A (M x K) · B (K x N).
enum LinearProduct { FORWARD = 0, DATA = 1, FILTER = 2 };

// v2 (TM = TN = 1), v3, v4 and v5. Block (blockIdx.x, blockIdx.y, blockIdx.z) computes the BM x BN
// tile of C at (blockIdx.y·BM, blockIdx.x·BN) over k in [blockIdx.z·chunk, (blockIdx.z + 1)·chunk)
// (out: y, dx or dw when gridDim.z is 1; else partial product blockIdx.z of gridDim.z, M·N floats
// apart, for linear_backward_db to add). Grid (ceil(N / BN), ceil(M / BM), splits); chunk a multiple of BK
// (geometry.split_chunks), K itself without a split; block (BM/TM)·(BN/TN) threads. `a` and
// `b_operand` are the product's inputs in this order:
//   FORWARD x, w (C = y, M = N rows, N = O, K = I; `bias` used)
//   DATA    dy, w (C = dx, M = N rows, N = I, K = O)
//   FILTER  dy, x (C = dw, M = O, N = I, K = N rows)
template <int BM, int BN, int BK, int TM, int TN, int SCHEDULE, int PRODUCT>
__device__ __forceinline__ void linear_gemm(const float* __restrict__ a, const float* __restrict__ b_operand,
                                            const float* __restrict__ bias, float* __restrict__ c, int rows,
                                            int inputs, int outputs, int chunk) {
    const int m0 = blockIdx.y * BM, n0 = blockIdx.x * BN, split = blockIdx.z;
    const int k_begin = split * chunk;
    if constexpr (PRODUCT == FORWARD) {
        const DenseOperand<true> xs(a, inputs);         // x (N x I), k = i
        const DenseOperand<true> ws(b_operand, inputs); // w (O x I) read as (n = o, k = i)
        const BiasedOutput out{c + static_cast<size_t>(split) * rows * outputs, bias, outputs, split == 0};
        gemm<SCHEDULE, BM, BN, BK, TM, TN>(xs, ws, out, rows, outputs, k_begin, min(k_begin + chunk, inputs), m0, n0);
    } else if constexpr (PRODUCT == DATA) {
        const DenseOperand<true> dys(a, outputs);         // dy (N x O), k = o
        const DenseOperand<false> ws(b_operand, inputs);  // w (O x I) read as (n = i, k = o)
        const PlainOutput out{c + static_cast<size_t>(split) * rows * inputs, inputs};
        gemm<SCHEDULE, BM, BN, BK, TM, TN>(dys, ws, out, rows, inputs, k_begin, min(k_begin + chunk, outputs), m0, n0);
    } else {
        const DenseOperand<false> dys(a, outputs);        // dy (N x O) read as (m = o, k = n)
        const DenseOperand<false> xs(b_operand, inputs);  // x (N x I) read as (n = i, k = n)
        const PlainOutput out{c + static_cast<size_t>(split) * outputs * inputs, inputs};
        gemm<SCHEDULE, BM, BN, BK, TM, TN>(dys, xs, out, outputs, inputs, k_begin, min(k_begin + chunk, rows), m0, n0);
    }
}

template <int BM, int BN, int BK, int TM, int TN, int PRODUCT>
__global__ void linear_tiled(const float* __restrict__ a, const float* __restrict__ b_operand,
                             const float* __restrict__ bias, float* __restrict__ c, int rows, int inputs,
                             int outputs, int chunk) {
    linear_gemm<BM, BN, BK, TM, TN, GEMM_TILED, PRODUCT>(a, b_operand, bias, c, rows, inputs, outputs, chunk);
}

template <int BM, int BN, int BK, int TM, int TN, int PRODUCT>
__global__ void __launch_bounds__((BM / TM) * (BN / TN), 2)
    linear_double_buffered(const float* __restrict__ a, const float* __restrict__ b_operand,
                           const float* __restrict__ bias, float* __restrict__ c, int rows, int inputs,
                           int outputs, int chunk) {
    linear_gemm<BM, BN, BK, TM, TN, GEMM_DOUBLE_BUFFERED, PRODUCT>(a, b_operand, bias, c, rows, inputs, outputs,
                                                                   chunk);
}

// v5: register room for the 16 x 4 thread tile rather than v4's two blocks per SM.
template <int BM, int BN, int BK, int TM, int TN, int PRODUCT>
__global__ void __launch_bounds__((BM / TM) * (BN / TN))
    linear_warp_tiled(const float* __restrict__ a, const float* __restrict__ b_operand,
                      const float* __restrict__ bias, float* __restrict__ c, int rows, int inputs, int outputs,
                      int chunk) {
    linear_gemm<BM, BN, BK, TM, TN, GEMM_WARP_TILED, PRODUCT>(a, b_operand, bias, c, rows, inputs, outputs, chunk);
}
