// augment_crop: the data loader's crop, mirror, PCA lighting and normalization, on the device.
//
//     out[o, c, y, x] = images[source[o], top[o] + y, left[o] + x', c] · scale[c] + bias[o, c]
//     x' = S − 1 − x when flip[o], else x
//
// scale[c] = 1 / (255·std[c]) and bias[o, c] = (lighting shift[o, c] − mean[c]) / std[c] are formed
// on the host (loaders/augment.py), so the kernel does one multiply-add per element: contracted to
// one FMA here, two roundings in NumPy (tolerance "float32_elementwise").
//
// Versions (launcher kernels/cuda/augment.py; reference kernels/reference/augment.py):
//   v1 one thread per output pixel (o, y, x), all three channels: it reads the pixel's three
//      interleaved bytes and writes one float into each channel plane, so a warp's stores are 128
//      contiguous bytes per plane. The kernel is bound by its float32 writes (12 bytes out per 3
//      bytes in); there is no reuse for shared memory to exploit.
//
// Checked: python -m pytest tests/loaders/test_gpu_augment.py
//   (every version against the reference: g++ emulator here, `-m gpu` on a GPU; NVRTC for
//   (the kernel in the emulator against NumPy, and on a GPU through the loader; NVRTC:
//   tests/kernels/test_cuda_compile.py)
// Timed:   python -m pytest benchmarks/test_loader.py (the loader it serves)

// v1. Block (bx, o): thread t covers output pixel p = bx·blockDim.x + t of output image o, that is
// (y, x) = (p / size, p % size), and writes out[o, 0..2, y, x].
//   images  (batch, resize, resize, 3) uint8, interleaved RGB
//   params  (n, 4) int32: source image, top, left, flip (0 or 1)
//   scale   (3,) float32;  bias (n, 3) float32
//   out     (n, 3, size, size) float32 (out)
// Grid: x covers size·size pixels, y = n (<= 65,535). Preconditions, checked by the launcher on the
// host: 0 <= source < batch, 0 <= top, left <= resize − size.
extern "C" __global__ void augment_crop_v1(const unsigned char* __restrict__ images, const int* __restrict__ params,
                                           const float* __restrict__ scale, const float* __restrict__ bias,
                                           float* __restrict__ out, int resize, int size) {
    const int pixel = blockIdx.x * blockDim.x + threadIdx.x;
    const int o = blockIdx.y;
    const int plane = size * size;
    if (pixel >= plane) return;
    const int y = pixel / size;
    const int x = pixel % size;
    const int* p = params + 4 * o;
    const int source_x = p[2] + (p[3] ? size - 1 - x : x);
    // 64-bit offsets: a batch of 256x256 squares passes 2^31 bytes at 10,923 images.
    const unsigned char* rgb = images + ((static_cast<long long>(p[0]) * resize + p[1] + y) * resize + source_x) * 3;
    float* destination = out + static_cast<long long>(o) * 3 * plane + pixel;
    for (int c = 0; c < 3; ++c) destination[c * plane] = static_cast<float>(rgb[c]) * scale[c] + bias[3 * o + c];
}
