// A CPU stand-in for the small part of CUDA C that the kernels in kernels/cuda/*.cu use, so that
// g++ can compile those very sources and the tests can run them without a GPU
// (kernels/toolchain/emulator.py builds and drives it). Not a simulator of a GPU's timing or memory
// model: it runs the kernel code, in order, with real barriers.
//
// - Every CUDA thread of a block is a fiber (ucontext) on one OS thread. A fiber runs until it
//   reaches a barrier or returns; the scheduler then resumes the others. __syncthreads() releases
//   when every thread of the block waits at it; a warp-level call (__shfl_*_sync, __syncwarp) when
//   every lane of the warp does. A thread that returns while others wait at __syncthreads, or
//   threads stuck at different barriers, is reported as an error, not a hang.
// - Within a round between barriers the threads run in a shuffled order (fixed seed), so a missing
//   barrier shows up as a wrong result instead of passing by the luck of thread order.
// - Blocks run one after another, so every block's `__shared__` arrays come from one arena that
//   is reset at block start. emulator.py rewrites each declaration `__shared__ T name[..];` into a
//   reference to arena memory (see emu::shared_array); each array starts as NaN (every byte 0xFF:
//   a NaN as float or double, -1 as an integer), as uninitialised shared memory may hold anything
//   on a GPU, and sits between guard bands that are checked when the block ends, as global arrays
//   are by emulator.py. The static total is held to CUDA's 48 KiB.
// - Subnormal floats are flushed to zero during a launch, inputs and results (MXCSR's FTZ and DAZ
//   bits on x86-64, FPCR.FZ on AArch64), as the GPU runs code that CuPy compiles with -ftz=true.
//   The CPU flushes double precision too, which the GPU does not; no kernel's double arithmetic
//   comes near 2.2e-308.
// - Kernel arguments arrive as an array of pointers to values (as cuLaunchKernel takes them) with a
//   one-letter kind each, checked against the kernel's parameter types: a launcher that passes a
//   Python int where the kernel takes a 32-bit int is caught here, not on the GPU.

#pragma once

#include <ucontext.h>

#include <algorithm>
#include <cmath>
#include <cstdint>
#include <cstdio>
#include <cstring>
#include <random>
#include <stdexcept>
#include <string>
#include <type_traits>
#include <utility>
#include <vector>

#if defined(__x86_64__)
#include <xmmintrin.h>
#elif !defined(__aarch64__)
#error "the emulator flushes subnormals as the GPU does, through MXCSR (x86-64) or FPCR (AArch64) only"
#endif

#define __global__
#define __device__
#define __host__
#define __forceinline__ inline
#define __launch_bounds__(...)
#define __align__(n) __attribute__((aligned(n)))

struct dim3 {
    unsigned int x = 1, y = 1, z = 1;
    constexpr dim3() = default;
    constexpr dim3(unsigned int x_, unsigned int y_ = 1, unsigned int z_ = 1) : x(x_), y(y_), z(z_) {}
};

struct alignas(16) float4 {
    float x, y, z, w;
};
inline float4 make_float4(float x, float y, float z, float w) { return float4{x, y, z, w}; }

constexpr int warpSize = 32;

inline int min(int a, int b) { return a < b ? a : b; }
inline int max(int a, int b) { return a > b ? a : b; }
inline unsigned int min(unsigned int a, unsigned int b) { return a < b ? a : b; }
inline unsigned int max(unsigned int a, unsigned int b) { return a > b ? a : b; }
inline long long min(long long a, long long b) { return a < b ? a : b; }
inline long long max(long long a, long long b) { return a > b ? a : b; }

inline unsigned int __umulhi(unsigned int a, unsigned int b) {
    return (unsigned int)(((unsigned long long)a * b) >> 32);
}
inline float __int_as_float(int bits) {
    float value;
    std::memcpy(&value, &bits, sizeof value);
    return value;
}
inline float __uint_as_float(unsigned int bits) {
    float value;
    std::memcpy(&value, &bits, sizeof value);
    return value;
}
inline int __float_as_int(float value) {
    int bits;
    std::memcpy(&bits, &value, sizeof bits);
    return bits;
}
template <class T>
inline T __ldg(const T* p) {
    return *p;
}

namespace emu {

enum class State { Runnable, BlockBarrier, WarpBarrier, Exited };

struct Fiber {
    ucontext_t context;
    dim3 index;
    int linear = 0;
    State state = State::Runnable;
};

constexpr std::size_t STACK_BYTES = 128 * 1024;

struct Block {
    std::vector<Fiber> fibers;
    std::vector<std::vector<char>> stacks;
    std::vector<unsigned long long> exchange;  // one slot per thread for warp shuffles
    ucontext_t scheduler;
    Fiber* current = nullptr;
    void (*body)(void*) = nullptr;
    void* body_argument = nullptr;
    std::string error;
};

inline Block* g_block = nullptr;
inline dim3 g_block_index, g_block_dim, g_grid_dim;

// ---- __shared__ memory: one arena per block ----------------------------------------------------
constexpr std::size_t SHARED_LIMIT = 48 * 1024;  // bytes of static __shared__ a CUDA block may declare
constexpr std::size_t SHARED_GUARD = 256;        // poisoned bytes either side of every array
constexpr std::size_t SHARED_ARENA = 256 * 1024;  // room for SHARED_LIMIT plus every guard and alignment gap
constexpr unsigned char SHARED_POISON = 0xFF;

struct SharedArray {
    const char* name;
    std::size_t offset, bytes;
};

struct SharedArena {
    std::vector<unsigned char> storage = std::vector<unsigned char>(SHARED_ARENA);  // never resized: arrays point in
    std::size_t used = 0;      // bytes of storage handed out, guards included
    std::size_t declared = 0;  // bytes of the arrays themselves, against SHARED_LIMIT
    std::vector<SharedArray> arrays;
    unsigned long long block = 0;  // serial number of the block in progress, across launches
};
inline SharedArena g_shared;

// Where one `__shared__` declaration lives: the first thread of a block to reach it takes room
// from the arena, the others find it here.
struct SharedSlot {
    unsigned long long block = 0;
    void* data = nullptr;
};

inline void begin_shared_block() {
    ++g_shared.block;
    g_shared.used = g_shared.declared = 0;
    g_shared.arrays.clear();
}

[[noreturn]] inline void fail_in_fiber(const std::string& message);

inline void* shared_array(SharedSlot& slot, std::size_t bytes, std::size_t align, const char* name) {
    SharedArena& arena = g_shared;
    if (slot.block == arena.block) return slot.data;
    align = std::max<std::size_t>(align, 16);
    unsigned char* base = arena.storage.data();
    const std::uintptr_t first = reinterpret_cast<std::uintptr_t>(base + arena.used + SHARED_GUARD);
    const std::size_t offset = (first + align - 1) / align * align - reinterpret_cast<std::uintptr_t>(base);
    const std::size_t end = offset + bytes + SHARED_GUARD;
    if (arena.declared + bytes > SHARED_LIMIT || end > arena.storage.size())
        fail_in_fiber(std::string("__shared__ ") + name + ": the block's static shared memory would reach " +
                      std::to_string(arena.declared + bytes) + " bytes, over the " + std::to_string(SHARED_LIMIT) +
                      " CUDA allows");
    std::memset(base + arena.used, SHARED_POISON, end - arena.used);
    arena.used = end;
    arena.declared += bytes;
    arena.arrays.push_back(SharedArray{name, offset, bytes});
    slot.block = arena.block;
    slot.data = base + offset;
    return slot.data;
}

// Throws when a thread of the block that just ended wrote into a guard band.
inline void check_shared_guards(const dim3& block_index) {
    const unsigned char* base = g_shared.storage.data();
    for (const SharedArray& array : g_shared.arrays) {
        const unsigned char* before = base + array.offset - SHARED_GUARD;
        const unsigned char* after = base + array.offset + array.bytes;
        for (std::size_t i = 0; i < SHARED_GUARD; ++i) {
            if (before[i] != SHARED_POISON || after[i] != SHARED_POISON)
                throw std::runtime_error(std::string("block (") + std::to_string(block_index.x) + ", " +
                                         std::to_string(block_index.y) + ", " + std::to_string(block_index.z) +
                                         ") wrote outside __shared__ " + array.name + " (" +
                                         std::to_string(array.bytes) + " bytes)");
        }
    }
}

// Subnormals flushed to zero for the lifetime of one object, the previous mode restored after.
class FlushSubnormals {
  public:
#if defined(__x86_64__)
    FlushSubnormals() : saved_(_mm_getcsr()) { _mm_setcsr(saved_ | FLUSH_TO_ZERO | DENORMALS_ARE_ZERO); }
    ~FlushSubnormals() { _mm_setcsr(saved_); }

  private:
    static constexpr unsigned int FLUSH_TO_ZERO = 0x8000;      // results below FLT_MIN become zero
    static constexpr unsigned int DENORMALS_ARE_ZERO = 0x0040;  // inputs below FLT_MIN read as zero
    unsigned int saved_;
#else
    FlushSubnormals() : saved_(__builtin_aarch64_get_fpcr()) { __builtin_aarch64_set_fpcr(saved_ | FLUSH_TO_ZERO); }
    ~FlushSubnormals() { __builtin_aarch64_set_fpcr(saved_); }

  private:
    static constexpr unsigned int FLUSH_TO_ZERO = 1u << 24;  // FPCR.FZ: inputs and results
    unsigned int saved_;
#endif
    FlushSubnormals(const FlushSubnormals&) = delete;
    FlushSubnormals& operator=(const FlushSubnormals&) = delete;
};

[[noreturn]] inline void fail_in_fiber(const std::string& message) {
    // Exceptions must not cross a context switch: record the message, stop this fiber for good.
    g_block->error = message;
    g_block->current->state = State::Exited;
    swapcontext(&g_block->current->context, &g_block->scheduler);
    std::abort();  // never resumed
}

inline void wait(State barrier) {
    g_block->current->state = barrier;
    swapcontext(&g_block->current->context, &g_block->scheduler);
}

inline void fiber_main() {
    g_block->body(g_block->body_argument);
    g_block->current->state = State::Exited;
    // returning resumes uc_link: the scheduler
}

inline std::string describe(const Fiber& fiber) {
    return "thread (" + std::to_string(fiber.index.x) + ", " + std::to_string(fiber.index.y) + ", " +
           std::to_string(fiber.index.z) + ") of block (" + std::to_string(g_block_index.x) + ", " +
           std::to_string(g_block_index.y) + ", " + std::to_string(g_block_index.z) + ")";
}

// Runs one block to completion; throws std::runtime_error on a barrier error.
inline void run_block(Block& block, std::mt19937& order_rng) {
    const int threads = (int)(g_block_dim.x * g_block_dim.y * g_block_dim.z);
    begin_shared_block();
    block.fibers.assign(threads, Fiber{});
    if ((int)block.stacks.size() < threads) block.stacks.resize(threads, std::vector<char>(STACK_BYTES));
    block.exchange.assign(threads, 0);
    block.error.clear();
    for (int t = 0; t < threads; ++t) {
        Fiber& fiber = block.fibers[t];
        fiber.linear = t;
        fiber.index = dim3(t % g_block_dim.x, (t / g_block_dim.x) % g_block_dim.y, t / (g_block_dim.x * g_block_dim.y));
        getcontext(&fiber.context);
        fiber.context.uc_stack.ss_sp = block.stacks[t].data();
        fiber.context.uc_stack.ss_size = STACK_BYTES;
        fiber.context.uc_link = &block.scheduler;
        makecontext(&fiber.context, fiber_main, 0);
    }
    std::vector<int> order(threads);
    for (;;) {
        order.clear();
        for (int t = 0; t < threads; ++t)
            if (block.fibers[t].state == State::Runnable) order.push_back(t);
        std::shuffle(order.begin(), order.end(), order_rng);
        for (int t : order) {
            block.current = &block.fibers[t];
            swapcontext(&block.scheduler, &block.current->context);
            if (!block.error.empty()) throw std::runtime_error(block.error + " (" + describe(*block.current) + ")");
        }
        // Nobody can run: release a barrier, finish, or report why not.
        bool released = false;
        for (int warp = 0; warp * 32 < threads; ++warp) {
            const int first = warp * 32, last = std::min(first + 32, threads);
            bool whole = true;
            for (int t = first; t < last; ++t) whole = whole && block.fibers[t].state == State::WarpBarrier;
            if (whole) {
                for (int t = first; t < last; ++t) block.fibers[t].state = State::Runnable;
                released = true;
            }
        }
        if (released) continue;
        int exited = 0, at_block = 0;
        for (const Fiber& fiber : block.fibers) {
            exited += fiber.state == State::Exited;
            at_block += fiber.state == State::BlockBarrier;
        }
        if (exited == threads) {
            check_shared_guards(g_block_index);
            return;
        }
        if (at_block == threads) {
            for (Fiber& fiber : block.fibers) fiber.state = State::Runnable;
            continue;
        }
        for (const Fiber& fiber : block.fibers) {
            if (fiber.state == State::Exited) continue;
            const char* where = fiber.state == State::BlockBarrier ? "__syncthreads()" : "a warp-level barrier";
            throw std::runtime_error(std::string("barrier never completes: ") + describe(fiber) + " waits at " + where +
                                     " while " + std::to_string(exited) + " threads have returned and " +
                                     std::to_string(at_block) + " of " + std::to_string(threads) +
                                     " wait at __syncthreads()");
        }
    }
}

inline void require_whole_warp(unsigned int mask, const char* call) {
    const int threads = (int)(g_block_dim.x * g_block_dim.y * g_block_dim.z);
    const int warp_first = g_block->current->linear / 32 * 32;
    if (mask != 0xffffffffu || warp_first + 32 > threads)
        fail_in_fiber(std::string(call) + " needs the full mask on a whole warp of 32 threads");
}

template <class T>
inline T shuffle(unsigned int mask, T value, int source_lane, const char* call) {
    static_assert(sizeof(T) <= sizeof(unsigned long long), "shuffle of a value wider than 64 bits");
    require_whole_warp(mask, call);
    const int me = g_block->current->linear, warp_first = me / 32 * 32;
    std::memcpy(&g_block->exchange[me], &value, sizeof(T));
    wait(State::WarpBarrier);  // every lane has published its value
    T result;
    std::memcpy(&result, &g_block->exchange[warp_first + source_lane], sizeof(T));
    wait(State::WarpBarrier);  // every lane has read before any lane publishes again
    return result;
}

template <class T>
constexpr char kind_of() {
    if constexpr (std::is_pointer_v<T>) return 'p';
    else if constexpr (std::is_same_v<T, float>) return 'f';
    else if constexpr (std::is_same_v<T, double>) return 'd';
    else if constexpr (std::is_integral_v<T> && sizeof(T) == 4) return std::is_signed_v<T> ? 'i' : 'u';
    else if constexpr (std::is_integral_v<T> && sizeof(T) == 8) return std::is_signed_v<T> ? 'I' : 'U';
    else return '?';
}

template <class... P>
struct Call {
    void (*kernel)(P...);
    void** args;
};

template <class... P, std::size_t... I>
inline void invoke(const Call<P...>& call, std::index_sequence<I...>) {
    call.kernel(*static_cast<std::remove_cv_t<std::remove_reference_t<P>>*>(call.args[I])...);
}

template <class... P>
inline void body(void* argument) {
    invoke(*static_cast<Call<P...>*>(argument), std::index_sequence_for<P...>{});
}

// Launch `kernel` over the grid, block by block. dims = {grid x, y, z, block x, y, z}; kinds holds
// one letter per argument (p pointer, i/u 32-bit int, I/U 64-bit int, f float, d double).
template <class... P>
inline void launch(void (*kernel)(P...), const unsigned int* dims, void** args, const char* kinds) {
    const char expected[] = {kind_of<std::remove_cv_t<P>>()..., '\0'};
    if (std::strcmp(expected, kinds) != 0)
        throw std::runtime_error(std::string("argument kinds ") + kinds + " do not match the kernel's parameters " +
                                 expected + " (p pointer, i int32, u uint32, I int64, U uint64, f float32, d float64)");
    g_grid_dim = dim3(dims[0], dims[1], dims[2]);
    g_block_dim = dim3(dims[3], dims[4], dims[5]);
    Call<P...> call{kernel, args};
    static Block block;
    block.body = &body<P...>;
    block.body_argument = &call;
    g_block = &block;
    std::mt19937 order_rng(20120101);
    // Before the fibers are made: each fiber's context captures the floating-point mode it starts in.
    const FlushSubnormals flush;
    for (unsigned int z = 0; z < g_grid_dim.z; ++z)
        for (unsigned int y = 0; y < g_grid_dim.y; ++y)
            for (unsigned int x = 0; x < g_grid_dim.x; ++x) {
                g_block_index = dim3(x, y, z);
                run_block(block, order_rng);
            }
}

// The C entry every generated launcher wraps: 0 on success, else 1 with the message in `error`.
template <class... P>
inline int launch_c(void (*kernel)(P...), const unsigned int* dims, void** args, const char* kinds, char* error,
                    int error_size) {
    try {
        launch(kernel, dims, args, kinds);
        return 0;
    } catch (const std::exception& e) {
        std::snprintf(error, (std::size_t)error_size, "%s", e.what());
        return 1;
    }
}

}  // namespace emu

#define threadIdx (emu::g_block->current->index)
#define blockIdx (emu::g_block_index)
#define blockDim (emu::g_block_dim)
#define gridDim (emu::g_grid_dim)

inline void __syncthreads() { emu::wait(emu::State::BlockBarrier); }
inline void __syncwarp(unsigned int mask = 0xffffffffu) {
    emu::require_whole_warp(mask, "__syncwarp");
    emu::wait(emu::State::WarpBarrier);
}
template <class T>
inline T __shfl_sync(unsigned int mask, T value, int lane, int width = 32) {
    const int me = emu::g_block->current->linear % 32;
    return emu::shuffle(mask, value, (me / width) * width + lane % width, "__shfl_sync");
}
template <class T>
inline T __shfl_xor_sync(unsigned int mask, T value, int lane_mask, int width = 32) {
    const int me = emu::g_block->current->linear % 32;
    const int source = me ^ lane_mask;
    return emu::shuffle(mask, value, source / width == me / width ? source : me, "__shfl_xor_sync");
}
template <class T>
inline T __shfl_down_sync(unsigned int mask, T value, unsigned int delta, int width = 32) {
    const int me = emu::g_block->current->linear % 32;
    const int source = me + (int)delta;
    return emu::shuffle(mask, value, source / width == me / width ? source : me, "__shfl_down_sync");
}
