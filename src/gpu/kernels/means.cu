// Centroid means after an assignment, summed as the CPU's Lloyd update sums
// them (quantize::centroid_sum_chunk), so the means are bit-exact: the rows of
// cluster j are perm[start[j] .. start[j + 1]] in ascending row order; rows
// fall in chunks of `chunk` rows; each chunk's members are summed in row
// order in double, the chunk sums added in chunk order, and the total times
// 1 / size (in double) rounded to float. Clusters without rows keep their
// centroid. One thread per (cluster, dimension) element of the k x d
// centroids, so a warp reads consecutive floats of one row.
SEMID_KERNEL void semid_centroid_means(const float* x, semid_u32 d, const semid_u32* perm,
                                       const semid_u32* start, semid_u32 k, semid_u32 chunk,
                                       float* centroids) {
    unsigned long long e = (unsigned long long)blockIdx.x * blockDim.x + threadIdx.x;
    if (e >= (unsigned long long)k * d) return;
    semid_u32 j = (semid_u32)(e / d);
    semid_u32 t = (semid_u32)(e % d);
    semid_u32 b = start[j];
    semid_u32 end = start[j + 1];
    if (b == end) return;
    double total = 0.0;
    double part = 0.0;
    semid_u32 cur = perm[b] / chunk;
    for (semid_u32 p = b; p < end; ++p) {
        semid_u32 r = perm[p];
        semid_u32 c = r / chunk;
        if (c != cur) {
            total += part;
            part = 0.0;
            cur = c;
        }
        part += (double)x[(unsigned long long)r * d + t];
    }
    total += part;
    double inv = 1.0 / (double)(end - b);
    centroids[e] = (float)(total * inv);
}
