// One RQ level's labels into the row-major n x levels code matrix, as
// Quantizer::encode_into lays codes out: codes[i * levels + level] =
// labels[i] (labels are below the codebook size, at most 65 536). One
// thread per row.
SEMID_KERNEL void semid_store_codes(const semid_u32* labels, semid_u32 n, semid_u32 levels,
                                    semid_u32 level, semid_u16* codes) {
    semid_u32 i = blockIdx.x * blockDim.x + threadIdx.x;
    if (i >= n) return;
    codes[(unsigned long long)i * levels + level] = (semid_u16)labels[i];
}
