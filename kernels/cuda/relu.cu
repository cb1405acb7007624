// relu_forward: y = x where x >= 0, else 0 (NaN stays NaN, as np.maximum(x, 0) keeps it).
// relu_backward: dx = dy where y > 0, else 0.
//
// Versions (kernels/cuda/relu.py; reference kernels/reference/relu.py):
//   v1 one thread per element.
//   v2 one thread per four elements with 16-byte loads and stores (float4): a quarter of the
//      load instructions for the same bytes. The launcher uses it only when every pointer is
//      16-byte aligned; the last count % 4 elements are done one at a time.
//
// Checked: python -m pytest tests/kernels/test_conformance.py -k relu
//   (every version against the reference: g++ emulator here, `-m gpu` on a GPU; NVRTC for
//   sm_80/sm_90 without spills: tests/kernels/test_cuda_compile.py)
// Timed:   alexnet-cuda bench kernels --face cuda --op relu_forward --op relu_backward --versions all

// The rule written so that a NaN input compares false and passes through, like np.maximum.
__device__ __forceinline__ float relu(float v) { return v < 0.0f ? 0.0f : v; }
__device__ __forceinline__ float relu_gradient(float gradient, float output) { return output > 0.0f ? gradient : 0.0f; }

// v1. Thread e (of any 1-D grid covering count) writes y[e] (out).
extern "C" __global__ void relu_forward_v1(const float* __restrict__ x, float* __restrict__ y, int count) {
    const int e = blockIdx.x * blockDim.x + threadIdx.x;
    if (e < count) y[e] = relu(x[e]);
}

// v1. Thread e writes dx[e] (out).
extern "C" __global__ void relu_backward_v1(const float* __restrict__ dy, const float* __restrict__ y,
                                            float* __restrict__ dx, int count) {
    const int e = blockIdx.x * blockDim.x + threadIdx.x;
    if (e < count) dx[e] = relu_gradient(dy[e], y[e]);
}

// v2. Thread v writes y[4v .. 4v + 3] for v < count / 4, and thread t < count % 4 also the tail
// element 4·(count / 4) + t (out). Grid: any 1-D grid covering max(count / 4, 1) threads.
// Precondition: x and y 16-byte aligned.
extern "C" __global__ void relu_forward_v2(const float* __restrict__ x, float* __restrict__ y, int count) {
    const int v = blockIdx.x * blockDim.x + threadIdx.x;
    const int vectors = count / 4;
    if (v < vectors) {
        const float4 in = reinterpret_cast<const float4*>(x)[v];
        reinterpret_cast<float4*>(y)[v] = make_float4(relu(in.x), relu(in.y), relu(in.z), relu(in.w));
    }
    const int tail = vectors * 4 + v;
    if (v < count % 4) y[tail] = relu(x[tail]);
}

// v2 backward, same layout and preconditions (dy, y and dx aligned).
extern "C" __global__ void relu_backward_v2(const float* __restrict__ dy, const float* __restrict__ y,
                                            float* __restrict__ dx, int count) {
    const int v = blockIdx.x * blockDim.x + threadIdx.x;
    const int vectors = count / 4;
    if (v < vectors) {
        const float4 g = reinterpret_cast<const float4*>(dy)[v];
        const float4 out = reinterpret_cast<const float4*>(y)[v];
        reinterpret_cast<float4*>(dx)[v] = make_float4(relu_gradient(g.x, out.x), relu_gradient(g.y, out.y),
                                                       relu_gradient(g.z, out.z), relu_gradient(g.w, out.w));
    }
    const int tail = vectors * 4 + v;
    if (v < count % 4) dx[tail] = relu_gradient(dy[tail], y[tail]);
}
