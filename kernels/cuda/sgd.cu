// sgd_update, in place, the paper's rule:
//   v ← momentum·v − (weight_decay·lr)·w − lr·grad;  w ← w + v
// weight_decay·lr is formed once on the host in double and rounded to float, as the NumPy
// reference does, so the two faces apply the same factor.
//
// Versions (kernels/cuda/sgd.py; reference kernels/reference/sgd.py):
//   v1 one thread per parameter.
//   v2 one thread per four parameters with 16-byte loads and stores (float4), the tail one at a
//      time; used only when w, grad and velocity are 16-byte aligned.
//
// Checked: python -m pytest tests/kernels/test_conformance.py -k sgd
//   (every version against the reference: g++ emulator here, `-m gpu` on a GPU; NVRTC for
//   sm_80/sm_90 without spills: tests/kernels/test_cuda_compile.py)
// Timed:   alexnet-cuda bench kernels --face cuda --op sgd_update --versions all

__device__ __forceinline__ void sgd_step(float& w, float grad, float& v, float lr, float momentum, float decay_lr) {
    v = momentum * v - decay_lr * w - lr * grad;
    w = w + v;
}

// v1. Thread e updates w[e] and velocity[e] (in, out). Any 1-D grid covering count.
extern "C" __global__ void sgd_update_v1(float* __restrict__ w, const float* __restrict__ grad,
                                         float* __restrict__ velocity, float lr, float momentum, float decay_lr,
                                         int count) {
    const int e = blockIdx.x * blockDim.x + threadIdx.x;
    if (e >= count) return;
    float weight = w[e], v = velocity[e];
    sgd_step(weight, grad[e], v, lr, momentum, decay_lr);
    velocity[e] = v;
    w[e] = weight;
}

// v2. Thread t updates parameters 4t .. 4t + 3 for t < count / 4, and thread t < count % 4 also
// parameter 4·(count / 4) + t (in, out). Grid: any 1-D grid covering max(count / 4, 1) threads.
extern "C" __global__ void sgd_update_v2(float* __restrict__ w, const float* __restrict__ grad,
                                         float* __restrict__ velocity, float lr, float momentum, float decay_lr,
                                         int count) {
    const int t = blockIdx.x * blockDim.x + threadIdx.x;
    const int vectors = count / 4;
    if (t < vectors) {
        float4 weight = reinterpret_cast<float4*>(w)[t];
        float4 v = reinterpret_cast<float4*>(velocity)[t];
        const float4 g = reinterpret_cast<const float4*>(grad)[t];
        sgd_step(weight.x, g.x, v.x, lr, momentum, decay_lr);
        sgd_step(weight.y, g.y, v.y, lr, momentum, decay_lr);
        sgd_step(weight.z, g.z, v.z, lr, momentum, decay_lr);
        sgd_step(weight.w, g.w, v.w, lr, momentum, decay_lr);
        reinterpret_cast<float4*>(velocity)[t] = v;
        reinterpret_cast<float4*>(w)[t] = weight;
    }
    const int tail = vectors * 4 + t;
    if (t < count % 4) {
        float weight = w[tail], v = velocity[tail];
        sgd_step(weight, grad[tail], v, lr, momentum, decay_lr);
        velocity[tail] = v;
        w[tail] = weight;
    }
}
