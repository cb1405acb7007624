// softmax_xent_forward: for logits (N, K) and labels (N,) int32,
//   probs[n, k] = exp(l[n, k] − m_n) / s_n,  m_n = max_k l[n, k],  s_n = Σ_k exp(l[n, k] − m_n)  (out)
//   row_loss[n] = −((l[n, label] − m_n) − log s_n), in double as the reference does     (out, scratch)
//   loss        = (1/N) Σ_n row_loss[n], added in a fixed order                          (out, 0-d)
// Subtracting the row maximum keeps every exponent <= 0. No atomics anywhere: the loss is the
// same on every run. A label outside [0, K) gives a NaN row loss instead of a stray read (the GPU
// faces do not check label values: that would synchronize).
// softmax_xent_backward: dlogits[n, k] = (probs[n, k] − [k == label[n]]) / N, NaN on the row of a
// label outside [0, K).
//
// Versions (kernels/cuda/softmax_xent.py; reference kernels/reference/softmax_xent.py):
//   v1 one block per row; tree reductions over shared memory for the maximum and the sum.
//   v2 the same with warp-shuffle reductions: each warp reduces in registers, one barrier, then
//      every warp reduces the warps' results; two barriers per reduction instead of log2(THREADS) + 2.
//   Both write row_loss; softmax_xent_mean (one block) then averages it. Backward: v1 only.
//
// Checked: python -m pytest tests/kernels/test_conformance.py -k softmax_xent
//   (every version against the reference: g++ emulator here, `-m gpu` on a GPU; NVRTC for
//   sm_80/sm_90 without spills: tests/kernels/test_cuda_compile.py)
// Timed:   alexnet-cuda bench kernels --face cuda --op softmax_xent_forward --op softmax_xent_backward --versions all

#define NEGATIVE_INFINITY __int_as_float(0xff800000)
#define QUIET_NAN __int_as_float(0x7fc00000)

struct MaxOp {
    __device__ __forceinline__ static float identity() { return NEGATIVE_INFINITY; }
    __device__ __forceinline__ float operator()(float a, float b) const { return fmaxf(a, b); }
};
struct SumOp {
    __device__ __forceinline__ static float identity() { return 0.0f; }
    __device__ __forceinline__ float operator()(float a, float b) const { return a + b; }
};

// v1: every thread of the block gets op over all threads' values. THREADS a power of two;
// scratch holds THREADS floats.
template <int THREADS, class Op>
__device__ __forceinline__ float block_reduce_tree(float value, float* scratch, Op op) {
    static_assert((THREADS & (THREADS - 1)) == 0, "the tree halves THREADS to 1");
    scratch[threadIdx.x] = value;
    __syncthreads();  // every value is in shared memory before the tree reads it
    for (int half = THREADS / 2; half > 0; half /= 2) {
        if (threadIdx.x < half) scratch[threadIdx.x] = op(scratch[threadIdx.x], scratch[threadIdx.x + half]);
        __syncthreads();  // this level is complete before the next one reads it
    }
    const float result = scratch[0];
    __syncthreads();  // everyone has read the result before scratch is written again
    return result;
}

// Butterfly over the 32 lanes of a warp: every lane ends with op over all of them.
template <class Op>
__device__ __forceinline__ float warp_reduce(float value, Op op) {
#pragma unroll
    for (int lanes = 16; lanes > 0; lanes /= 2) value = op(value, __shfl_xor_sync(0xffffffffu, value, lanes));
    return value;
}

// v2: every thread of the block gets op over all threads' values. THREADS a multiple of 32, at
// most 32 warps; scratch holds THREADS / 32 floats.
template <int THREADS, class Op>
__device__ __forceinline__ float block_reduce_shuffle(float value, float* scratch, Op op) {
    constexpr int WARPS = THREADS / 32;
    static_assert(THREADS % 32 == 0 && WARPS <= 32, "whole warps, and no more warp results than lanes");
    const int lane = threadIdx.x % 32, warp = threadIdx.x / 32;
    value = warp_reduce(value, op);
    if (lane == 0) scratch[warp] = value;
    __syncthreads();  // every warp's result is in shared memory before any warp reads them
    // Every warp reduces the warp results itself, so all threads have the total without a broadcast.
    value = warp_reduce(lane < WARPS ? scratch[lane] : Op::identity(), op);
    __syncthreads();  // everyone has read scratch before it is written again
    return value;
}

// v1 (SHUFFLE false) and v2. Block n (one per row, THREADS threads) writes probs[n, :] and
// row_loss[n] (out). Grid: (N,).
template <int THREADS, bool SHUFFLE>
__device__ __forceinline__ void softmax_xent_row(const float* __restrict__ logits, const int* __restrict__ labels,
                                                 float* __restrict__ probs, double* __restrict__ row_loss,
                                                 int classes) {
    __shared__ float scratch[SHUFFLE ? THREADS / 32 : THREADS];  // the shuffle keeps one value per warp
    const int row = blockIdx.x;
    const float* l = logits + row * classes;
    float* p = probs + row * classes;

    float largest = MaxOp::identity();
    for (int k = threadIdx.x; k < classes; k += THREADS) largest = fmaxf(largest, l[k]);
    largest = SHUFFLE ? block_reduce_shuffle<THREADS>(largest, scratch, MaxOp())
                      : block_reduce_tree<THREADS>(largest, scratch, MaxOp());

    float total = 0.0f;
    for (int k = threadIdx.x; k < classes; k += THREADS) total += expf(l[k] - largest);
    total = SHUFFLE ? block_reduce_shuffle<THREADS>(total, scratch, SumOp())
                    : block_reduce_tree<THREADS>(total, scratch, SumOp());

    for (int k = threadIdx.x; k < classes; k += THREADS) p[k] = expf(l[k] - largest) / total;
    if (threadIdx.x == 0) {
        const int label = labels[row];
        row_loss[row] = (label < 0 || label >= classes)
                            ? (double)QUIET_NAN
                            : -((double)(l[label] - largest) - log((double)total));
    }
}

template <int THREADS>
__global__ void softmax_xent_forward_tree(const float* __restrict__ logits, const int* __restrict__ labels,
                                          float* __restrict__ probs, double* __restrict__ row_loss, int classes) {
    softmax_xent_row<THREADS, false>(logits, labels, probs, row_loss, classes);
}

template <int THREADS>
__global__ void softmax_xent_forward_shuffle(const float* __restrict__ logits, const int* __restrict__ labels,
                                             float* __restrict__ probs, double* __restrict__ row_loss,
                                             int classes) {
    softmax_xent_row<THREADS, true>(logits, labels, probs, row_loss, classes);
}

// Every version. One block of THREADS threads (a power of two) writes loss[0] = mean of
// row_loss[0 .. rows) (out), in a fixed order: thread t adds rows t, t + THREADS, ..., then a
// tree adds the threads' sums. Grid: (1,).
template <int THREADS>
__global__ void softmax_xent_mean(const double* __restrict__ row_loss, float* __restrict__ loss, int rows) {
    static_assert((THREADS & (THREADS - 1)) == 0, "the tree halves THREADS to 1");
    __shared__ double partial[THREADS];
    double acc = 0.0;
    for (int row = threadIdx.x; row < rows; row += THREADS) acc += row_loss[row];
    partial[threadIdx.x] = acc;
    __syncthreads();  // every thread's sum is in shared memory before the tree reads it
    for (int half = THREADS / 2; half > 0; half /= 2) {
        if (threadIdx.x < half) partial[threadIdx.x] += partial[threadIdx.x + half];
        __syncthreads();  // this level is complete before the next one reads it
    }
    if (threadIdx.x == 0) loss[0] = (float)(partial[0] / rows);
}

// v1 backward. Thread e (of any 1-D grid covering N·K) writes dlogits[e] (out).
extern "C" __global__ void softmax_xent_backward_v1(const float* __restrict__ probs, const int* __restrict__ labels,
                                                    float* __restrict__ dlogits, int rows, int classes) {
    const int e = blockIdx.x * blockDim.x + threadIdx.x;
    if (e >= rows * classes) return;
    const int row = e / classes, k = e % classes;
    const int label = labels[row];
    if (label < 0 || label >= classes) {
        dlogits[e] = QUIET_NAN;
        return;
    }
    dlogits[e] = (probs[e] - (k == label ? 1.0f : 0.0f)) / (float)rows;
}
