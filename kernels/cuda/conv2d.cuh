// Convolution shapes and the implicit-GEMM operands shared by conv2d_forward.cu and
// conv2d_backward.cu.
//
// x (N, C, H, W), w (F, C/G, KH, KW), y and dy (N, F, OH, OW), all C-contiguous float32, with
// OH = (H + 2·pad − KH)/stride + 1 (likewise OW). Per group g the convolution is a product over
//   pos = (img, oy, ox) in [0, N·OH·OW)   output positions
//   tap = (ci, i, j)    in [0, C/G·KH·KW) taps of one filter (ci is a channel within the group)
// and cols[g](tap, pos) = x[img, g·C/G + ci, oy·stride − pad + i, ox·stride − pad + j], zero where
// that falls in the padding: the im2col matrix, which no kernel here ever stores.
//
//   forward  y[g]  (F/G x N·OH·OW)     = w[g] (F/G x C/G·KH·KW) · cols[g]
//   filter   dw[g] (F/G x C/G·KH·KW)   = dy[g] (F/G x N·OH·OW) · cols[g]ᵀ
//   data     dx[g] (C/G x N·H·W)       = Σ over (fi, i, j) of w[g·F/G + fi, ci, i, j] times dy at
//            the output whose window puts tap (i, j) on the input position, zero where none does
//
// Launchers pass the twelve shape integers in CONV_SHAPE_PARAMS order; every tensor has fewer than
// 2^31 elements (checked by the launcher), so int indices suffice.

#pragma once

#include "gemm.cuh"

#define CONV_SHAPE_PARAMS                                                                              \
    int batch, int channels, int height, int width, int filters, int kernel_h, int kernel_w, int out_h, \
        int out_w, int stride, int pad, int groups
#define CONV_SHAPE \
    ConvShape(batch, channels, height, width, filters, kernel_h, kernel_w, out_h, out_w, stride, pad, groups)

struct ConvShape {
    int n, c, h, w, f, kh, kw, oh, ow, stride, pad, groups;
    int cg, fg;     // channels and filters per group
    int taps;       // KH·KW
    int in_plane;   // H·W
    int out_plane;  // OH·OW
    int filter;     // C/G·KH·KW: the length of one filter, K of the forward product

    __device__ ConvShape(CONV_SHAPE_PARAMS)
        : n(batch), c(channels), h(height), w(width), f(filters), kh(kernel_h), kw(kernel_w), oh(out_h), ow(out_w),
          stride(stride), pad(pad), groups(groups), cg(channels / groups), fg(filters / groups),
          taps(kernel_h * kernel_w), in_plane(height * width), out_plane(out_h * out_w),
          filter(channels / groups * kernel_h * kernel_w) {}
};

// cols[g](tap, pos) for one group g.
struct Im2col {
    const float* x;
    ConvShape s;
    int g;

    __device__ __forceinline__ float value(int tap, int pos) const {
        const int ci = tap / s.taps, t = tap % s.taps;
        const int i = t / s.kw, j = t % s.kw;
        const int img = pos / s.out_plane, p = pos % s.out_plane;
        const int iy = (p / s.ow) * s.stride - s.pad + i;
        const int ix = (p % s.ow) * s.stride - s.pad + j;
        if (iy < 0 || iy >= s.h || ix < 0 || ix >= s.w) return 0.0f;  // zero padding
        return x[((img * s.c + g * s.cg + ci) * s.h + iy) * s.w + ix];
    }
};

// Forward B (mn = pos, k = tap): neighbouring positions are neighbouring x along a row.
struct ForwardColumns {
    static constexpr bool k_contiguous = false;
    static constexpr bool dense = false;
    Im2col cols;
    __device__ __forceinline__ float at(int pos, int tap) const { return cols.value(tap, pos); }
};

// Filter-gradient B (mn = tap, k = pos): the reduction runs over positions, neighbours along k.
struct FilterColumns {
    static constexpr bool k_contiguous = true;
    static constexpr bool dense = false;
    Im2col cols;
    __device__ __forceinline__ float at(int tap, int pos) const { return cols.value(tap, pos); }
};

// Filter-gradient A (mn = fi, k = pos): dy[img, g·F/G + fi, oy, ox].
struct FilterOutputGradient {
    static constexpr bool k_contiguous = true;
    static constexpr bool dense = false;
    const float* dy;
    ConvShape s;
    int g;
    __device__ __forceinline__ float at(int fi, int pos) const {
        const int img = pos / s.out_plane, p = pos % s.out_plane;
        return dy[(img * s.f + g * s.fg + fi) * s.out_plane + p];
    }
};

// Data-gradient A (mn = ci, k = (fi, i, j)): w[g·F/G + fi, ci, i, j].
struct DataWeights {
    static constexpr bool k_contiguous = true;
    static constexpr bool dense = false;
    const float* w;
    ConvShape s;
    int g;
    __device__ __forceinline__ float at(int ci, int k) const {
        const int fi = k / s.taps, t = k % s.taps;
        return w[((g * s.fg + fi) * s.cg + ci) * s.taps + t];
    }
};

// Data-gradient B (mn = input position (img, iy, ix), k = (fi, i, j)): dy at the output (oy, ox)
// with oy·stride − pad + i = iy (likewise ox), zero where no output's window puts tap (i, j) there.
struct DataOutputGradient {
    static constexpr bool k_contiguous = false;
    static constexpr bool dense = false;
    const float* dy;
    ConvShape s;
    int g;
    __device__ __forceinline__ float at(int position, int k) const {
        const int fi = k / s.taps, t = k % s.taps;
        const int i = t / s.kw, j = t % s.kw;
        const int img = position / s.in_plane, q = position % s.in_plane;
        const int ty = q / s.w + s.pad - i;  // oy·stride when an output covers this input with tap i
        const int tx = q % s.w + s.pad - j;
        if (ty < 0 || tx < 0 || ty % s.stride != 0 || tx % s.stride != 0) return 0.0f;
        const int oy = ty / s.stride, ox = tx / s.stride;
        if (oy >= s.oh || ox >= s.ow) return 0.0f;
        return dy[((img * s.f + g * s.fg + fi) * s.oh + oy) * s.ow + ox];
    }
};
