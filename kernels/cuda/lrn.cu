// Local response normalization across channels, the paper's form (alpha not divided by size):
//   lrn_forward:  scale[c] = k + alpha · Σ_{c' ∈ window(c)} x[c']²,  y[c] = x[c] · scale[c]^−beta   (out: y, scale)
//   lrn_backward: dx[c] = dy[c] · scale[c]^−beta − 2·alpha·beta · x[c] · Σ_{c' ∈ window(c)} dy[c']·y[c']/scale[c']
// with window(c) = [c − size/2, c + size/2] ∩ [0, C), at one (img, iy, ix); see
// kernels/reference/lrn.py for the derivation (the window is symmetric, so the gather above is
// the exact gradient).
//
// Versions (kernels/cuda/lrn.py; reference kernels/reference/lrn.py): v1 only. One thread per (img, iy, ix) column walks the C
// channels, sliding the window: add the entering channel's term, drop the leaving one's. Threads
// of a warp hold neighbouring ix, so every channel's loads are coalesced. The running sum is a
// double: dropping a large term from a float sum would leave its rounding error behind for the
// small terms that stay (the reference avoids running sums for the same reason).
// Shapes: x, y, scale, dy, dx (N, C, H, W).
//
// Checked: python -m pytest tests/kernels/test_conformance.py -k lrn
//   (every version against the reference: g++ emulator here, `-m gpu` on a GPU; NVRTC for
//   sm_80/sm_90 without spills: tests/kernels/test_cuda_compile.py)
// Timed:   alexnet-cuda bench kernels --face cuda --op lrn_forward --op lrn_backward

// v1 forward. Thread e (of any 1-D grid covering N·H·W) writes y and scale at column e (out).
extern "C" __global__ void lrn_forward_v1(const float* __restrict__ x, float* __restrict__ y,
                                          float* __restrict__ scale, int n, int c, int plane, int size, float alpha,
                                          float beta, float k) {
    const int e = blockIdx.x * blockDim.x + threadIdx.x;
    if (e >= n * plane) return;
    const int half = size / 2;
    const int base = (e / plane) * c * plane + e % plane;  // x[img, 0, iy, ix]; channel ch at base + ch·plane
    double window = 0.0;
    for (int ch = 0; ch < min(half, c); ++ch) {  // the window of channel 0 before its upper edge enters
        const float v = x[base + ch * plane];
        window += (double)(v * v);
    }
    for (int ch = 0; ch < c; ++ch) {
        const int entering = ch + half, leaving = ch - half - 1;
        if (entering < c) {
            const float v = x[base + entering * plane];
            window += (double)(v * v);
        }
        if (leaving >= 0) {
            const float v = x[base + leaving * plane];
            window -= (double)(v * v);
        }
        const float v = x[base + ch * plane];
        const float s = k + alpha * (float)window;
        scale[base + ch * plane] = s;
        y[base + ch * plane] = v * powf(s, -beta);
    }
}

// v1 backward. Thread e (of any 1-D grid covering N·H·W) writes dx at column e (out).
// two_alpha_beta = 2·alpha·beta, formed on the host in double and rounded once, like the reference.
extern "C" __global__ void lrn_backward_v1(const float* __restrict__ dy, const float* __restrict__ x,
                                           const float* __restrict__ y, const float* __restrict__ scale,
                                           float* __restrict__ dx, int n, int c, int plane, int size, float beta,
                                           float two_alpha_beta) {
    const int e = blockIdx.x * blockDim.x + threadIdx.x;
    if (e >= n * plane) return;
    const int half = size / 2;
    const int base = (e / plane) * c * plane + e % plane;
    double window = 0.0;  // Σ dy·y/scale over the window
    for (int ch = 0; ch < min(half, c); ++ch) {
        const int at = base + ch * plane;
        window += (double)(dy[at] * y[at] / scale[at]);
    }
    for (int ch = 0; ch < c; ++ch) {
        const int entering = ch + half, leaving = ch - half - 1;
        if (entering < c) {
            const int at = base + entering * plane;
            window += (double)(dy[at] * y[at] / scale[at]);
        }
        if (leaving >= 0) {
            const int at = base + leaving * plane;
            window -= (double)(dy[at] * y[at] / scale[at]);
        }
        const int at = base + ch * plane;
        dx[at] = dy[at] * powf(scale[at], -beta) - two_alpha_beta * x[at] * (float)window;
    }
}
