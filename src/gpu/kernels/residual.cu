// Residual update after one RQ level, as the CPU greedy encoder does it:
// x[i * d + t] -= c[labels[i] * d + t], in float32. One thread per element.
SEMID_KERNEL void semid_residual(float* x, const float* c, const semid_u32* labels, semid_u32 n,
                                 semid_u32 d) {
    unsigned long long e = (unsigned long long)blockIdx.x * blockDim.x + threadIdx.x;
    if (e >= (unsigned long long)n * d) return;
    semid_u32 i = (semid_u32)(e / d);
    semid_u32 t = (semid_u32)(e % d);
    x[e] -= c[(unsigned long long)labels[i] * d + t];
}
