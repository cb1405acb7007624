// maxpool_forward: y[img, ch, oy, ox] = max over the kernel x kernel window at (oy·stride,
// ox·stride) of x[img, ch]; argmax = iy·W + ix of the winner, the first in row-major window order
// among equals (a later element replaces the best only when strictly greater). No padding:
// OH = (H − kernel)/stride + 1.
// maxpool_backward: dx[img, ch, iy, ix] = Σ dy[img, ch, oy, ox] over the outputs whose window
// covers (iy, ix) and whose argmax chose it: a gather, so no atomics and a fixed order (outputs in
// row-major order), the same on every run.
//
// Versions (kernels/cuda/pool.py; reference kernels/reference/pool.py): v1 only.
// Shapes: x, dx (N, C, H, W); y, dy, argmax (N, C, OH, OW), argmax int32.

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

// v1 backward. Thread e (of any 1-D grid covering N·C·H·W) writes dx[e] (out). The outputs whose
// window covers row iy are oy in [ceil((iy − kernel + 1)/stride), floor(iy/stride)] ∩ [0, OH).
extern "C" __global__ void maxpool_backward_v1(const float* __restrict__ dy, const int* __restrict__ argmax,
                                               float* __restrict__ dx, int planes, int h, int w, int oh, int ow,
                                               int kernel, int stride) {
    const int e = blockIdx.x * blockDim.x + threadIdx.x;
    if (e >= planes * h * w) return;
    const int ix = e % w, iy = (e / w) % h, plane = e / (h * w);
    const int at = iy * w + ix;
    const int oy_first = iy >= kernel ? (iy - kernel) / stride + 1 : 0;
    const int ox_first = ix >= kernel ? (ix - kernel) / stride + 1 : 0;
    const int oy_last = min(iy / stride, oh - 1), ox_last = min(ix / stride, ow - 1);
    const int* chosen = argmax + plane * oh * ow;
    const float* gradient = dy + plane * oh * ow;
    float acc = 0.0f;
    for (int oy = oy_first; oy <= oy_last; ++oy)
        for (int ox = ox_first; ox <= ox_last; ++ox)
            if (chosen[oy * ow + ox] == at) acc += gradient[oy * ow + ox];
    dx[e] = acc;
}
