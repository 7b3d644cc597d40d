// FSQ indices from the CPU path's rounding thresholds, so results are
// bit-exact: dimension j's digit is base[j] plus the number of thresholds
// t (thresholds[toff[j]] .. thresholds[toff[j + 1]]) with z >= t, and the
// index is the sum of digit * basis[j]. One thread per row.
SEMID_KERNEL void semid_fsq_indices(const float* z, semid_u32 n, semid_u32 d,
                                    const float* thresholds, const semid_u32* toff,
                                    const semid_u32* base, const semid_u32* basis,
                                    semid_u16* out) {
    semid_u32 i = blockIdx.x * blockDim.x + threadIdx.x;
    if (i >= n) return;
    const float* row = z + (unsigned long long)i * d;
    semid_u32 idx = 0;
    for (semid_u32 j = 0; j < d; ++j) {
        semid_u32 digit = base[j];
        float v = row[j];
        for (semid_u32 t = toff[j]; t < toff[j + 1]; ++t) {
            digit += v >= thresholds[t] ? 1u : 0u;
        }
        idx += digit * basis[j];
    }
    out[i] = (semid_u16)idx;
}
