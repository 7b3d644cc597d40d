// Nearest centroid from GEMM products: row i's label is the j minimising
// cnorm[j] - 2 * dots[i * k + j] (the squared distance less the row's own
// norm), scanning j upwards with a strict '<', so ties go to the lower
// index as on the CPU. dist[i] = xnorm[i] + that minimum, clamped at 0.
// One thread per row; rows beyond n do nothing.
SEMID_KERNEL void semid_assign(const float* dots, const float* cnorm, const float* xnorm,
                               semid_u32 n, semid_u32 k, semid_u32* labels, float* dist) {
    semid_u32 i = blockIdx.x * blockDim.x + threadIdx.x;
    if (i >= n) return;
    const float* row = dots + (unsigned long long)i * k;
    float best = cnorm[0] - 2.0f * row[0];
    semid_u32 arg = 0;
    for (semid_u32 j = 1; j < k; ++j) {
        float v = cnorm[j] - 2.0f * row[j];
        if (v < best) {
            best = v;
            arg = j;
        }
    }
    float d = xnorm[i] + best;
    labels[i] = arg;
    dist[i] = d > 0.0f ? d : 0.0f;
}
