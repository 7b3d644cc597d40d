// The kernels of src/gpu/kernels, compiled as C++, and one C entry point per
// kernel that runs its grid on the CPU.
#include "emu.h"

thread_local semid_dim3 blockIdx, threadIdx, blockDim, gridDim;

#include "assign.cu"
#include "fsq.cu"
#include "beam.cu"
#include "residual.cu"
#include "means.cu"
#include "codes.cu"

extern "C" void emu_semid_assign(unsigned grid, unsigned block, const float* dots,
                                 const float* cnorm, const float* xnorm, semid_u32 n,
                                 semid_u32 k, semid_u32* labels, float* dist) {
    semid_launch(grid, block, [&] { semid_assign(dots, cnorm, xnorm, n, k, labels, dist); });
}

extern "C" void emu_semid_fsq_indices(unsigned grid, unsigned block, const float* z, semid_u32 n,
                                      semid_u32 d, const float* thresholds,
                                      const semid_u32* toff, const semid_u32* base,
                                      const semid_u32* basis, semid_u16* out) {
    semid_launch(grid, block,
                 [&] { semid_fsq_indices(z, n, d, thresholds, toff, base, basis, out); });
}

extern "C" void emu_semid_beam_step(unsigned grid, unsigned block, semid_u32 n_queries,
                                    semid_u32 cap, const semid_u32* qbeg, const semid_u32* order,
                                    const semid_u32* node, const float* bscore,
                                    const float* scores, semid_u32 vocab, const semid_u32* coff,
                                    const semid_u16* ctok, semid_u32 dense,
                                    const semid_u32* dchild, float* out_key, semid_u32* out_parent,
                                    semid_u32* out_child, semid_u16* out_tok,
                                    semid_u32* out_count) {
    semid_launch(grid, block, [&] {
        semid_beam_step(n_queries, cap, qbeg, order, node, bscore, scores, vocab, coff, ctok,
                        dense, dchild, out_key, out_parent, out_child, out_tok, out_count);
    });
}

extern "C" void emu_semid_residual(unsigned grid, unsigned block, float* x, const float* c,
                                   const semid_u32* labels, semid_u32 n, semid_u32 d) {
    semid_launch(grid, block, [&] { semid_residual(x, c, labels, n, d); });
}

extern "C" void emu_semid_centroid_means(unsigned grid, unsigned block, const float* x,
                                         semid_u32 d, const semid_u32* perm,
                                         const semid_u32* start, semid_u32 k, semid_u32 chunk,
                                         float* centroids) {
    semid_launch(grid, block, [&] { semid_centroid_means(x, d, perm, start, k, chunk, centroids); });
}

extern "C" void emu_semid_store_codes(unsigned grid, unsigned block, const semid_u32* labels,
                                      semid_u32 n, semid_u32 levels, semid_u32 level,
                                      semid_u16* codes) {
    semid_launch(grid, block, [&] { semid_store_codes(labels, n, levels, level, codes); });
}
