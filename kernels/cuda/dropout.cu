// dropout_forward: inverted dropout with a counter-based random mask (kernels/README.md, "Dropout
// masks"). Element i uses Philox4x32-10 (Salmon et al., SC'11) with key (seed mod 2^32,
// seed >> 32) and counter (j mod 2^32, j >> 32, offset mod 2^32, offset >> 32), j = i / 4; it
// takes output word r = word[i mod 4] and is kept when (r >> 8) >= threshold, threshold =
// ceil(p·2^24) computed on the host (kernels.contract.dropout_threshold), so the mask is decided
// in integers and is bit-identical to the NumPy reference.
//   mask[i] = kept;  y[i] = x[i] · (mask[i] · scale),  scale = 1/(1 − p) rounded to float
// dropout_backward: dx[i] = dy[i] · (mask[i] · scale), one thread per element, no random numbers.
// Multiplying by (mask · scale) rather than selecting reproduces the reference exactly, signed
// zeros and NaN included.
//
// Versions (kernels/cuda/dropout.py; reference kernels/reference/dropout.py,
// kernels/reference/philox.py): v1 only; one thread per Philox block of four elements forward.
//
// Checked: python -m pytest tests/kernels/test_conformance.py -k dropout
//   (every version against the reference: g++ emulator here, `-m gpu` on a GPU; NVRTC for
//   sm_80/sm_90 without spills: tests/kernels/test_cuda_compile.py)
// Timed:   alexnet-cuda bench kernels --face cuda --op dropout_forward --op dropout_backward

#define PHILOX_M0 0xD2511F53u
#define PHILOX_M1 0xCD9E8D57u
#define PHILOX_W0 0x9E3779B9u  // golden ratio: the key schedule's Weyl increment
#define PHILOX_W1 0xBB67AE85u  // sqrt(3) − 1

struct PhiloxWords {
    unsigned int word[4];
};

__device__ __forceinline__ PhiloxWords philox4x32_10(unsigned int c0, unsigned int c1, unsigned int c2,
                                                    unsigned int c3, unsigned int k0, unsigned int k1) {
#pragma unroll
    for (int round = 0; round < 10; ++round) {
        if (round > 0) {  // the key advances between rounds, not before the first
            k0 += PHILOX_W0;
            k1 += PHILOX_W1;
        }
        const unsigned int hi0 = __umulhi(PHILOX_M0, c0), lo0 = PHILOX_M0 * c0;
        const unsigned int hi1 = __umulhi(PHILOX_M1, c2), lo1 = PHILOX_M1 * c2;
        const unsigned int n0 = hi1 ^ c1 ^ k0, n2 = hi0 ^ c3 ^ k1;
        c0 = n0;
        c1 = lo1;
        c2 = n2;
        c3 = lo0;
    }
    return PhiloxWords{{c0, c1, c2, c3}};
}

// v1 forward. Thread j (of any 1-D grid covering ceil(count / 4) threads) draws Philox block j and
// writes mask and y for elements 4j .. min(4j + 3, count − 1) (out).
extern "C" __global__ void dropout_forward_v1(const float* __restrict__ x, float* __restrict__ y,
                                              unsigned char* __restrict__ mask, int count, unsigned int threshold,
                                              float scale, unsigned int seed_low, unsigned int seed_high,
                                              unsigned int offset_low, unsigned int offset_high) {
    const unsigned long long j = (unsigned long long)blockIdx.x * blockDim.x + threadIdx.x;
    if (j * 4 >= (unsigned long long)count) return;
    const PhiloxWords r = philox4x32_10((unsigned int)j, (unsigned int)(j >> 32), offset_low, offset_high,
                                        seed_low, seed_high);
#pragma unroll
    for (int q = 0; q < 4; ++q) {
        const int i = (int)(j * 4) + q;
        if (i >= count) break;
        const unsigned char kept = (r.word[q] >> 8) >= threshold ? 1 : 0;
        mask[i] = kept;
        y[i] = x[i] * ((float)kept * scale);
    }
}

// v1 backward. Thread e (of any 1-D grid covering count) writes dx[e] (out).
extern "C" __global__ void dropout_backward_v1(const float* __restrict__ dy, const unsigned char* __restrict__ mask,
                                               float* __restrict__ dx, int count, float scale) {
    const int e = blockIdx.x * blockDim.x + threadIdx.x;
    if (e < count) dx[e] = dy[e] * ((float)mask[e] * scale);
}
