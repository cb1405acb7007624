// Tiled matrix products C = A·B shared by the linear layer and the implicit-GEMM convolution.
//
// The kernels here never see a matrix in memory directly. An operand is a small struct that says
// where element (mn, k) lives (A is indexed (m, k), B is indexed (n, k)), so the same tiling code
// multiplies a plain row-major matrix, its transpose, or a convolution's im2col matrix that is
// gathered from the image on the fly and never stored. An epilogue struct writes each result.
//
//   struct Operand {
//       static constexpr bool k_contiguous;  // adjacent k are adjacent in memory (else adjacent mn)
//       static constexpr bool dense;         // address(mn, k) exists (a strided matrix, no gather)
//       __device__ float at(int mn, int k) const;           // in range; zero for padding and holes
//       __device__ const float* address(int mn, int k) const; // dense operands only
//       bool vectorizable;  // dense, and 16-byte loads along the contiguous axis are aligned
//   };
//   struct Epilogue { __device__ void store(int m, int n, float value) const; };
//
// The kernel masks everything outside [0, M) x [0, N) x [k_begin, k_end) with zeros itself, so
// operands decode indices but check no matrix bounds. [k_begin, k_end) is the slice of the
// reduction one block adds up: all of K, or one split of a split-K product.
//
// Versions (the same numbers as the Numba face; kernels/geometry.py holds every tile size):
//   v2 gemm_tiled with a 1 x 1 thread tile: a BM x BN block of C per block, one element per
//      thread; A and B tiles staged in shared memory, so each global value is read once per block
//      instead of once per output.
//   v3 gemm_tiled with a TM x TN thread tile (register blocking): a value read from shared memory
//      into a register is used TN (or TM) times, so the inner loop does TM·TN multiply-adds for
//      TM + TN shared-memory reads instead of 2.
//   v4 gemm_double_buffered: v3 plus two shared-memory stages, so the global loads of tile t + 1
//      are in flight while tile t is multiplied, one barrier per tile instead of two, and 16-byte
//      (float4) loads for dense operands.
//   v5 gemm_double_buffered with WarpTiledThreads: v4 with the block split into warp tiles, each
//      lane's fragments read from shared memory as float4 runs (the warp-tiling of the published
//      hand-written SGEMMs that come within 10% of cuBLAS).

#pragma once

// Shared tiles are stored k-major, tile[k][mn], so the inner product reads a row of each. Four
// floats of padding per row move consecutive k rows to different banks when a warp writes a column
// (k-contiguous operands), and keep every row 16-byte aligned.
#define GEMM_SMEM_PAD 4

// Copy the (BK x BMN) tile at (mn0, k0) of `op` into shared memory, zeros outside the bounds.
// Threads walk the operand's contiguous axis, so a warp reads consecutive addresses.
template <int BK, int BMN, int THREADS, class Operand>
__device__ __forceinline__ void gemm_load_tile(float (&tile)[BK][BMN + GEMM_SMEM_PAD], const Operand& op,
                                               int mn0, int mn_limit, int k0, int k_limit) {
    constexpr int ELEMENTS = BK * BMN;
    constexpr int ROUNDS = (ELEMENTS + THREADS - 1) / THREADS;
#pragma unroll
    for (int round = 0; round < ROUNDS; ++round) {
        const int e = threadIdx.x + round * THREADS;
        if (ELEMENTS % THREADS != 0 && e >= ELEMENTS) break;
        int mn, kk;
        if constexpr (Operand::k_contiguous) {
            mn = e / BK;
            kk = e % BK;
        } else {
            kk = e / BMN;
            mn = e % BMN;
        }
        const int gmn = mn0 + mn, gk = k0 + kk;
        tile[kk][mn] = (gmn < mn_limit && gk < k_limit) ? op.at(gmn, gk) : 0.0f;
    }
}

// v2 and v3. C[m0 .. m0+BM, n0 .. n0+BN] over k in [k_begin, k_end).
//   Block: THREADS = (BM/TM)·(BN/TN) threads, 1-D. Thread t owns rows m0 + ty + i·(BM/TM) and
//   columns n0 + tx + j·(BN/TN) (ty = t / (BN/TN), tx = t % (BN/TN)): interleaved rather than
//   contiguous, so that a warp's shared-memory reads of B hit consecutive banks and its stores of
//   C are coalesced.
//   Precondition: blockDim.x == THREADS.
template <int BM, int BN, int BK, int TM, int TN, class OperandA, class OperandB, class Epilogue>
__device__ __forceinline__ void gemm_tiled(const OperandA& a, const OperandB& b, const Epilogue& out, int M, int N,
                                           int k_begin, int k_end, int m0, int n0) {
    constexpr int ROWS = BM / TM, COLS = BN / TN, THREADS = ROWS * COLS;
    static_assert(BM % TM == 0 && BN % TN == 0, "a thread tile must divide the block tile");
    __shared__ float a_tile[BK][BM + GEMM_SMEM_PAD];
    __shared__ float b_tile[BK][BN + GEMM_SMEM_PAD];
    const int ty = threadIdx.x / COLS, tx = threadIdx.x % COLS;

    float acc[TM][TN];
#pragma unroll
    for (int i = 0; i < TM; ++i)
#pragma unroll
        for (int j = 0; j < TN; ++j) acc[i][j] = 0.0f;

    for (int k0 = k_begin; k0 < k_end; k0 += BK) {
        gemm_load_tile<BK, BM, THREADS>(a_tile, a, m0, M, k0, k_end);
        gemm_load_tile<BK, BN, THREADS>(b_tile, b, n0, N, k0, k_end);
        __syncthreads();  // the tiles are complete before any thread multiplies them
#pragma unroll
        for (int kk = 0; kk < BK; ++kk) {
            float a_frag[TM], b_frag[TN];
#pragma unroll
            for (int i = 0; i < TM; ++i) a_frag[i] = a_tile[kk][ty + i * ROWS];
#pragma unroll
            for (int j = 0; j < TN; ++j) b_frag[j] = b_tile[kk][tx + j * COLS];
#pragma unroll
            for (int i = 0; i < TM; ++i)
#pragma unroll
                for (int j = 0; j < TN; ++j) acc[i][j] += a_frag[i] * b_frag[j];
        }
        __syncthreads();  // every thread is done reading the tiles before the next k step overwrites them
    }

#pragma unroll
    for (int i = 0; i < TM; ++i) {
        const int m = m0 + ty + i * ROWS;
#pragma unroll
        for (int j = 0; j < TN; ++j) {
            const int n = n0 + tx + j * COLS;
            if (m < M && n < N) out.store(m, n, acc[i][j]);
        }
    }
}

// One thread's share of a tile for the double-buffered kernel: LOADS groups of four values along
// the operand's contiguous axis, fetched from global memory into registers (one float4 load per
// group when the operand allows it) and later written to a shared-memory stage.
template <int BK, int BMN, int THREADS, class Operand>
struct GemmStage {
    static constexpr int GROUPS = BK * BMN / 4;
    static constexpr int LOADS = GROUPS / THREADS;
    static_assert(BK % 4 == 0 && BMN % 4 == 0 && GROUPS % THREADS == 0,
                  "the double-buffered tile must split into float4 groups evenly over the threads");
    float values[LOADS][4];

    // Where group g starts, as (mn, k) within the tile.
    __device__ __forceinline__ static void group_origin(int g, int& mn, int& kk) {
        if constexpr (Operand::k_contiguous) {
            mn = g / (BK / 4);
            kk = (g % (BK / 4)) * 4;
        } else {
            kk = g / (BMN / 4);
            mn = (g % (BMN / 4)) * 4;
        }
    }

    __device__ __forceinline__ void fetch(const Operand& op, int mn0, int mn_limit, int k0, int k_limit) {
#pragma unroll
        for (int l = 0; l < LOADS; ++l) {
            int mn, kk;
            group_origin(threadIdx.x + l * THREADS, mn, kk);
            const int gmn = mn0 + mn, gk = k0 + kk;
            bool whole;  // all four values of the group are inside the matrix
            if constexpr (Operand::k_contiguous) whole = gmn < mn_limit && gk + 3 < k_limit;
            else whole = gmn + 3 < mn_limit && gk < k_limit;
            if constexpr (Operand::dense) {
                if (whole && op.vectorizable) {
                    // 16-byte aligned: the operand's base and leading dimension are multiples of 4
                    // floats (vectorizable) and the group starts on a multiple of 4 (BK, BMN % 4).
                    const float4 v = *reinterpret_cast<const float4*>(op.address(gmn, gk));
                    values[l][0] = v.x;
                    values[l][1] = v.y;
                    values[l][2] = v.z;
                    values[l][3] = v.w;
                    continue;
                }
            }
#pragma unroll
            for (int q = 0; q < 4; ++q) {
                const int qmn = Operand::k_contiguous ? gmn : gmn + q;
                const int qk = Operand::k_contiguous ? gk + q : gk;
                values[l][q] = (qmn < mn_limit && qk < k_limit) ? op.at(qmn, qk) : 0.0f;
            }
        }
    }

    __device__ __forceinline__ void store(float (&tile)[BK][BMN + GEMM_SMEM_PAD]) const {
#pragma unroll
        for (int l = 0; l < LOADS; ++l) {
            int mn, kk;
            group_origin(threadIdx.x + l * THREADS, mn, kk);
#pragma unroll
            for (int q = 0; q < 4; ++q) {
                if constexpr (Operand::k_contiguous) tile[kk + q][mn] = values[l][q];
                else tile[kk][mn + q] = values[l][q];
            }
        }
    }
};

// Which outputs of the block tile a thread owns, and how it reads its TM + TN fragment values from
// one k row of the staged tiles: rows row(i), i < TM, and columns col(j), j < TN, of the block tile.
//
// InterleavedThreads (v2-v4, gemm_tiled's layout): rows ty + i·(BM/TM), columns tx + j·(BN/TN), so
// a warp reads consecutive floats of the B row (no bank conflicts) and stores consecutive columns.
template <int BM, int BN, int TM, int TN>
struct InterleavedThreads {
    static constexpr int ROWS = BM / TM, COLS = BN / TN, THREADS = ROWS * COLS;
    int ty, tx;
    __device__ InterleavedThreads() : ty(threadIdx.x / COLS), tx(threadIdx.x % COLS) {}
    __device__ __forceinline__ int row(int i) const { return ty + i * ROWS; }
    __device__ __forceinline__ int col(int j) const { return tx + j * COLS; }
    __device__ __forceinline__ void fragments(const float* a_row, const float* b_row, float (&a)[TM],
                                              float (&b)[TN]) const {
#pragma unroll
        for (int i = 0; i < TM; ++i) a[i] = a_row[row(i)];
#pragma unroll
        for (int j = 0; j < TN; ++j) b[j] = b_row[col(j)];
    }
};

// WarpTiledThreads (v5): the block tile is split into warp tiles of WM x WN = (4·TM) x (8·TN), one
// per warp, and a warp's 32 lanes form a 4 x 8 grid over its tile. A lane owns TM/4 runs of four
// consecutive rows (16 rows apart) and TN/4 runs of four consecutive columns (32 apart), so each
// fragment run is one 16-byte shared-memory load: TM/4 + TN/4 loads per k instead of TM + TN. The
// lanes of a warp read 16 consecutive rows of A and 32 consecutive columns of B, without bank
// conflicts, and a warp's reads stay inside its own warp tile.
constexpr int WARP_LANE_ROWS = 4, WARP_LANE_COLS = 8;

template <int BM, int BN, int TM, int TN>
struct WarpTiledThreads {
    static constexpr int WM = WARP_LANE_ROWS * TM, WN = WARP_LANE_COLS * TN, WARPS_N = BN / WN;
    static constexpr int THREADS = 32 * (BM / WM) * WARPS_N;
    static_assert(TM % 4 == 0 && TN % 4 == 0 && BM % WM == 0 && BN % WN == 0,
                  "a warp tile of 4 x 8 lanes with float4 runs must divide the block tile");
    static_assert(THREADS == (BM / TM) * (BN / TN), "one thread per TM x TN outputs, as in every version");
    int row0, col0;  // the lane's first row and column in the block tile
    __device__ WarpTiledThreads() {
        const int warp = threadIdx.x / 32, lane = threadIdx.x % 32;
        row0 = (warp / WARPS_N) * WM + (lane / WARP_LANE_COLS) * 4;
        col0 = (warp % WARPS_N) * WN + (lane % WARP_LANE_COLS) * 4;
    }
    __device__ __forceinline__ int row(int i) const { return row0 + (i / 4) * (WARP_LANE_ROWS * 4) + i % 4; }
    __device__ __forceinline__ int col(int j) const { return col0 + (j / 4) * (WARP_LANE_COLS * 4) + j % 4; }
    __device__ __forceinline__ void fragments(const float* a_row, const float* b_row, float (&a)[TM],
                                              float (&b)[TN]) const {
        // 16-byte aligned: rows of the staged tiles are multiples of 4 floats (GEMM_SMEM_PAD) on
        // __align__(16) arrays, and every run starts on a multiple of 4.
#pragma unroll
        for (int r = 0; r < TM / 4; ++r) {
            const float4 v = *reinterpret_cast<const float4*>(a_row + row(4 * r));
            a[4 * r] = v.x, a[4 * r + 1] = v.y, a[4 * r + 2] = v.z, a[4 * r + 3] = v.w;
        }
#pragma unroll
        for (int r = 0; r < TN / 4; ++r) {
            const float4 v = *reinterpret_cast<const float4*>(b_row + col(4 * r));
            b[4 * r] = v.x, b[4 * r + 1] = v.y, b[4 * r + 2] = v.z, b[4 * r + 3] = v.w;
        }
    }
};

// v4 and v5. Same contract and result as gemm_tiled, with two shared-memory stages; Threads is the
// thread layout (InterleavedThreads for v4, WarpTiledThreads for v5).
//   Iteration t multiplies stage t % 2 while the loads of tile t + 1 are in flight into registers,
//   then writes them to the other stage. One barrier per tile suffices: the stage written in
//   iteration t was last read in iteration t - 1, which every thread finished before that
//   iteration's barrier. Both operands are staged k-major (tile[k][mn]), so a k-contiguous A, such
//   as x or the weights, is transposed on its way into shared memory.
//   Preconditions: blockDim.x == Threads::THREADS; BK·BM and BK·BN are multiples of 4·THREADS.
template <int BM, int BN, int BK, int TM, int TN, template <int, int, int, int> class Threads = InterleavedThreads,
          class OperandA, class OperandB, class Epilogue>
__device__ __forceinline__ void gemm_double_buffered(const OperandA& a, const OperandB& b, const Epilogue& out,
                                                     int M, int N, int k_begin, int k_end, int m0, int n0) {
    static_assert(BM % TM == 0 && BN % TN == 0, "a thread tile must divide the block tile");
    using Layout = Threads<BM, BN, TM, TN>;
    constexpr int THREADS = Layout::THREADS;
    __shared__ __align__(16) float a_tiles[2][BK][BM + GEMM_SMEM_PAD];
    __shared__ __align__(16) float b_tiles[2][BK][BN + GEMM_SMEM_PAD];
    const Layout layout;
    GemmStage<BK, BM, THREADS, OperandA> a_stage;
    GemmStage<BK, BN, THREADS, OperandB> b_stage;

    float acc[TM][TN];
#pragma unroll
    for (int i = 0; i < TM; ++i)
#pragma unroll
        for (int j = 0; j < TN; ++j) acc[i][j] = 0.0f;

    const int tiles = (k_end - k_begin + BK - 1) / BK;
    a_stage.fetch(a, m0, M, k_begin, k_end);
    b_stage.fetch(b, n0, N, k_begin, k_end);
    a_stage.store(a_tiles[0]);
    b_stage.store(b_tiles[0]);
    __syncthreads();  // stage 0 is complete before anyone multiplies it

    for (int t = 0; t < tiles; ++t) {
        const int current = t & 1;
        const bool more = t + 1 < tiles;  // the same in every thread: the barrier below is uniform
        if (more) {
            a_stage.fetch(a, m0, M, k_begin + (t + 1) * BK, k_end);
            b_stage.fetch(b, n0, N, k_begin + (t + 1) * BK, k_end);
        }
#pragma unroll
        for (int kk = 0; kk < BK; ++kk) {
            float a_frag[TM], b_frag[TN];
            layout.fragments(a_tiles[current][kk], b_tiles[current][kk], a_frag, b_frag);
#pragma unroll
            for (int i = 0; i < TM; ++i)
#pragma unroll
                for (int j = 0; j < TN; ++j) acc[i][j] += a_frag[i] * b_frag[j];
        }
        if (more) {
            a_stage.store(a_tiles[current ^ 1]);
            b_stage.store(b_tiles[current ^ 1]);
        }
        __syncthreads();  // the next stage is complete, and this one is no longer read, before t + 1
    }

#pragma unroll
    for (int i = 0; i < TM; ++i) {
        const int m = m0 + layout.row(i);
#pragma unroll
        for (int j = 0; j < TN; ++j) {
            const int n = n0 + layout.col(j);
            if (m < M && n < N) out.store(m, n, acc[i][j]);
        }
    }
}

// The product a kernel runs, by schedule: what the .cu files' templates take as SCHEDULE.
enum GemmSchedule { GEMM_TILED = 0, GEMM_DOUBLE_BUFFERED = 1, GEMM_WARP_TILED = 2 };

template <int SCHEDULE, int BM, int BN, int BK, int TM, int TN, class OperandA, class OperandB, class Epilogue>
__device__ __forceinline__ void gemm(const OperandA& a, const OperandB& b, const Epilogue& out, int M, int N,
                                     int k_begin, int k_end, int m0, int n0) {
    if constexpr (SCHEDULE == GEMM_WARP_TILED)
        gemm_double_buffered<BM, BN, BK, TM, TN, WarpTiledThreads>(a, b, out, M, N, k_begin, k_end, m0, n0);
    else if constexpr (SCHEDULE == GEMM_DOUBLE_BUFFERED)
        gemm_double_buffered<BM, BN, BK, TM, TN>(a, b, out, M, N, k_begin, k_end, m0, n0);
    else
        gemm_tiled<BM, BN, BK, TM, TN>(a, b, out, M, N, k_begin, k_end, m0, n0);
}

// A plain strided matrix as an operand: element (mn, k) at base[mn·ld + k] when K_CONTIGUOUS,
// else base[k·ld + mn].
template <bool K_CONTIGUOUS>
struct DenseOperand {
    static constexpr bool k_contiguous = K_CONTIGUOUS;
    static constexpr bool dense = true;
    const float* base;
    int ld;
    bool vectorizable;

    __device__ DenseOperand(const float* base_, int ld_)
        : base(base_), ld(ld_),
          vectorizable(ld_ % 4 == 0 && reinterpret_cast<unsigned long long>(base_) % 16 == 0) {}

    __device__ __forceinline__ const float* address(int mn, int k) const {
        return K_CONTIGUOUS ? base + (long long)mn * ld + k : base + (long long)k * ld + mn;
    }
    __device__ __forceinline__ float at(int mn, int k) const { return *address(mn, k); }
};
