// One step of the trie-constrained beam search for a batch of queries, as
// decode::BeamSearch does it on the CPU. One thread per query.
//
// Query q's live beams are order[qbeg[q] .. qbeg[q + 1]], listed in
// lexicographic order of their prefixes. Each beam b sits at trie node
// node[b] of this depth, has score bscore[b] and next-token scores
// scores[b * vocab ..]. Its allowed tokens come from one of two layouts:
// - CSR (dense == 0): the node's children ctok[coff[n] .. coff[n + 1]]
//   (ascending tokens; child index i is the i-th of them);
// - dense (dense != 0, the first levels, where nodes x vocab is small):
//   dchild[n * vocab + t] is token t's child index, or 0xffffffff when t is
//   not allowed. Tokens are visited in ascending order, as in CSR, so both
//   layouts keep the same candidates.
// Candidate (b, i) scores bscore[b] + scores[b * vocab + token]; NaN and
// -inf are dropped, tokens >= vocab are skipped. The query keeps the `cap`
// best (highest score; on equal scores the earlier candidate in (lex order,
// child index) order), written best first to out_*[q * cap ..] with their
// count in out_count[q]. The kept list is an insertion-sorted array in the
// thread's own output slots, so no shared memory is needed.
SEMID_KERNEL void semid_beam_step(semid_u32 n_queries, semid_u32 cap, const semid_u32* qbeg,
                                  const semid_u32* order, const semid_u32* node,
                                  const float* bscore, const float* scores, semid_u32 vocab,
                                  const semid_u32* coff, const semid_u16* ctok, semid_u32 dense,
                                  const semid_u32* dchild, float* out_key,
                                  semid_u32* out_parent, semid_u32* out_child,
                                  semid_u16* out_tok, semid_u32* out_count) {
    semid_u32 q = blockIdx.x * blockDim.x + threadIdx.x;
    if (q >= n_queries) return;
    float* key = out_key + (unsigned long long)q * cap;
    semid_u32* par = out_parent + (unsigned long long)q * cap;
    semid_u32* chi = out_child + (unsigned long long)q * cap;
    semid_u16* tok = out_tok + (unsigned long long)q * cap;
    semid_u32 len = 0;
    for (semid_u32 o = qbeg[q]; o < qbeg[q + 1]; ++o) {
        semid_u32 b = order[o];
        semid_u32 n = node[b];
        const float* row = scores + (unsigned long long)b * vocab;
        semid_u32 m = dense ? vocab : coff[n + 1] - coff[n];
        for (semid_u32 i = 0; i < m; ++i) {
            semid_u16 t;
            semid_u32 ci;
            if (dense) {
                ci = dchild[(unsigned long long)n * vocab + i];
                if (ci == 0xffffffffu) continue;
                t = (semid_u16)i;
            } else {
                t = ctok[coff[n] + i];
                ci = i;
                if (t >= vocab) continue;
            }
            float total = bscore[b] + row[t];
            // NaN or -inf: impossible.
            if (total != total || total < -3.402823466e+38f) continue;
            float k = -total;
            // Full and not better than the worst kept: an equal key loses.
            if (len == cap && k >= key[cap - 1]) continue;
            // First position whose key is greater than k.
            semid_u32 pos = 0;
            while (pos < len && key[pos] <= k) ++pos;
            semid_u32 end = len < cap ? len : cap - 1;
            for (semid_u32 j = end; j > pos; --j) {
                key[j] = key[j - 1];
                par[j] = par[j - 1];
                chi[j] = chi[j - 1];
                tok[j] = tok[j - 1];
            }
            key[pos] = k;
            par[pos] = b;
            chi[pos] = ci;
            tok[pos] = t;
            if (len < cap) ++len;
        }
    }
    out_count[q] = len;
}
