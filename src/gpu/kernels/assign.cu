// Nearest centroid from GEMM products: row i's label is the j minimising
// cnorm[j] - 2 * dots[j * n + i] (the squared distance less the row's own
// norm), scanning j upwards with a strict '<', so ties go to the lower
// index as on the CPU. dist[i] = xnorm[i] + that minimum, clamped at 0.
// The products are column-major (n rows x k centroids, one column per
// centroid), so the threads of a warp read consecutive floats at every j.
// One thread per row; rows beyond n do nothing.
SEMID_KERNEL void semid_assign(const float* dots, const float* cnorm, const float* xnorm,
                               semid_u32 n, semid_u32 k, semid_u32* labels, float* dist) {
    semid_u32 i = blockIdx.x * blockDim.x + threadIdx.x;
    if (i >= n) return;
    const float* col = dots + i;
    float best = cnorm[0] - 2.0f * col[0];
    semid_u32 arg = 0;
    for (semid_u32 j = 1; j < k; ++j) {
        float v = cnorm[j] - 2.0f * col[(unsigned long long)j * n];
        if (v < best) {
            best = v;
            arg = j;
        }
    }
    float d = xnorm[i] + best;
    labels[i] = arg;
    dist[i] = d > 0.0f ? d : 0.0f;
}
