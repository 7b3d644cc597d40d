// semid GPU kernels: shared definitions.
//
// Every kernel source compiles two ways: with NVRTC for the device (where
// __CUDACC__ is defined), and as plain C++ under gpu-emu/emu.h, which runs
// the grid on the CPU so that tests check the kernel logic without a GPU.
// Kernels therefore use one thread per output element, no shared memory and
// no __syncthreads.
#ifdef __CUDACC__
#define SEMID_KERNEL extern "C" __global__
#define SEMID_DEVICE __device__ static inline
typedef unsigned int semid_u32;
typedef unsigned short semid_u16;
#endif
