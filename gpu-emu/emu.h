// Runs CUDA kernels written for semid (one thread per element, no shared
// memory, no __syncthreads) on the CPU: blockIdx/threadIdx/blockDim/gridDim
// are thread-local globals that semid_launch sets before calling the kernel
// body once per (block, thread), in order.
#pragma once

struct semid_dim3 {
    unsigned x, y, z;
};

extern thread_local semid_dim3 blockIdx, threadIdx, blockDim, gridDim;

#define SEMID_KERNEL static
#define SEMID_DEVICE static inline
typedef unsigned int semid_u32;
typedef unsigned short semid_u16;

template <class F>
void semid_launch(unsigned grid, unsigned block, F body) {
    gridDim = {grid, 1, 1};
    blockDim = {block, 1, 1};
    for (unsigned b = 0; b < grid; ++b) {
        for (unsigned t = 0; t < block; ++t) {
            blockIdx = {b, 0, 0};
            threadIdx = {t, 0, 0};
            body();
        }
    }
}
