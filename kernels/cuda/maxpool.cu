// maxpool_forward: y[img, ch, oy, ox] = max over the kernel x kernel window at (oy·stride,
// ox·stride) of x[img, ch]; argmax = iy·W + ix of the winner, the first in row-major window order
// among equals (a later element replaces the best only when strictly greater). No padding:
// OH = (H − kernel)/stride + 1.
// maxpool_backward: dx[img, ch, iy, ix] = Σ dy[img, ch, oy, ox] over the outputs whose window
// covers (iy, ix) and whose argmax chose it: a gather, so no atomics and a fixed order (outputs in
// row-major order), the same on every run. Scattering from the outputs would race where windows
// overlap (stride < kernel) and need float atomics, whose order, and rounding, varies by run.
//
// Versions (kernels/cuda/maxpool.py; reference kernels/reference/maxpool.py): v1 only.
// Shapes: x, dx (N, C, H, W); y, dy, argmax (N, C, OH, OW), argmax int32.
//
// Checked: python -m pytest tests/kernels/test_conformance.py -k maxpool
//   (every version against the reference: g++ emulator here, `-m gpu` on a GPU; NVRTC for
//   sm_80/sm_90 without spills: tests/kernels/test_cuda_compile.py)
// Timed:   alexnet-cuda bench kernels --face cuda --op maxpool_forward --op maxpool_backward

// v1 forward. Thread e (of any 1-D grid covering N·C·OH·OW) writes y[e] and argmax[e] (out).
extern "C" __global__ void maxpool_forward_v1(const float* __restrict__ x, float* __restrict__ y,
                                              int* __restrict__ argmax, int planes, int h, int w, int oh, int ow,
                                              int kernel, int stride) {
    const int e = blockIdx.x * blockDim.x + threadIdx.x;
    if (e >= planes * oh * ow) return;
    const int ox = e % ow, oy = (e / ow) % oh, plane = e / (oh * ow);
    const float* in = x + plane * h * w;
    int best_at = (oy * stride) * w + ox * stride;
    float best = in[best_at];
    for (int i = 0; i < kernel; ++i) {
        for (int j = 0; j < kernel; ++j) {
            const int at = (oy * stride + i) * w + ox * stride + j;
            const float v = in[at];
            if (v > best) {  // strict: the first of equal values keeps the win
                best = v;
                best_at = at;
            }
        }
    }
    y[e] = best;
    argmax[e] = best_at;
}

// v1 backward. Thread e (of any 1-D grid covering N·C·H·W) writes dx[e] (out).
// The gather visits every output whose window, taken as window_h x window_w placed every
// stride_h rows and stride_w columns, covers (iy, ix): oy in [ceil((iy − window_h + 1)/stride_h),
// floor(iy/stride_h)] ∩ [0, OH), likewise ox. Precondition: that window holds every output's true
// pooling window (kernels/cuda/maxpool.py says where it comes from, since the contract does not pass
// kernel and stride); a larger one costs reads, not correctness, because the argmax test picks
// the outputs that chose this element.
extern "C" __global__ void maxpool_backward_v1(const float* __restrict__ dy, const int* __restrict__ argmax,
                                               float* __restrict__ dx, int planes, int h, int w, int oh, int ow,
                                               int window_h, int window_w, int stride_h, int stride_w) {
    const int e = blockIdx.x * blockDim.x + threadIdx.x;
    if (e >= planes * h * w) return;
    const int ix = e % w, iy = (e / w) % h, plane = e / (h * w);
    const int at = iy * w + ix;
    const int oy_first = max(iy - window_h + stride_h, 0) / stride_h;  // the ceiling above, at least 0
    const int ox_first = max(ix - window_w + stride_w, 0) / stride_w;
    const int oy_last = min(iy / stride_h, oh - 1), ox_last = min(ix / stride_w, ow - 1);
    const int* chosen = argmax + plane * oh * ow;
    const float* gradient = dy + plane * oh * ow;
    float acc = 0.0f;
    for (int oy = oy_first; oy <= oy_last; ++oy)
        for (int ox = ox_first; ox <= ox_last; ++ox)
            if (chosen[oy * ow + ox] == at) acc += gradient[oy * ow + ox];
    dx[e] = acc;
}
