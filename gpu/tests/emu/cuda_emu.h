// A tiny host emulation of the CUDA C subset used by gpu/kernels/*.cu, so that the kernel
// sources themselves (not a port) can be executed and checked against he-core on a machine
// without a GPU. Each block runs on its own: threads are OS threads sharing a std::barrier
// (reused from block to block) when the kernel uses __syncthreads, otherwise they run one
// after the other. Kernels must reach every __syncthreads uniformly within a block.
#include <barrier>
#include <cstdint>

#define __global__
#define __device__
#define __forceinline__ inline
#define __shared__

struct dim3 {
    unsigned x, y, z;
};
thread_local dim3 threadIdx;
thread_local dim3 blockIdx;
dim3 blockDim;
dim3 gridDim;

static inline unsigned long long __umul64hi(unsigned long long a, unsigned long long b) {
    return (unsigned long long)(((unsigned __int128)a * b) >> 64);
}

std::barrier<> *g_barrier = nullptr;
static inline void __syncthreads() { g_barrier->arrive_and_wait(); }

// Dynamic shared memory of the block being run (blocks run one at a time).
unsigned long long sh[1 << 12];
