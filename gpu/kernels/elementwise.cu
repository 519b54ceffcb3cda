// he-gpu: element-wise RNS arithmetic and automorphisms over a batch of `rows` limbs.
//
// One thread per word, grid-stride loop over rows * N words; word idx belongs to row
// idx >> log_n, which uses modulus limb_mod[row % limbs]. Outputs may alias the first input
// (in-place operation) except for the automorphisms, which permute.

#define HE_GPU_FOR_EACH_WORD(total)                                                          \
    for (u64 idx = (u64)blockIdx.x * blockDim.x + threadIdx.x; idx < (total);                \
         idx += (u64)gridDim.x * blockDim.x)

// out = a + b mod q
extern "C" __global__ void poly_add(u64 *out, const u64 *a, const u64 *b,
                                    const ModParams *params, const u32 *limb_mod, u32 limbs,
                                    u32 log_n, u64 total) {
    HE_GPU_FOR_EACH_WORD(total) {
        const u64 q = params[limb_mod[(idx >> log_n) % limbs]].q;
        out[idx] = add_mod(a[idx], b[idx], q);
    }
}

// out = a - b mod q
extern "C" __global__ void poly_sub(u64 *out, const u64 *a, const u64 *b,
                                    const ModParams *params, const u32 *limb_mod, u32 limbs,
                                    u32 log_n, u64 total) {
    HE_GPU_FOR_EACH_WORD(total) {
        const u64 q = params[limb_mod[(idx >> log_n) % limbs]].q;
        out[idx] = sub_mod(a[idx], b[idx], q);
    }
}

// out = -a mod q
extern "C" __global__ void poly_neg(u64 *out, const u64 *a, const ModParams *params,
                                    const u32 *limb_mod, u32 limbs, u32 log_n, u64 total) {
    HE_GPU_FOR_EACH_WORD(total) {
        const u64 q = params[limb_mod[(idx >> log_n) % limbs]].q;
        const u64 x = a[idx];
        out[idx] = x == 0 ? 0 : q - x;
    }
}

// out = a * b mod q (Barrett)
extern "C" __global__ void poly_mul(u64 *out, const u64 *a, const u64 *b,
                                    const ModParams *params, const u32 *limb_mod, u32 limbs,
                                    u32 log_n, u64 total) {
    HE_GPU_FOR_EACH_WORD(total) {
        const ModParams &m = params[limb_mod[(idx >> log_n) % limbs]];
        out[idx] = mul_mod(a[idx], b[idx], m);
    }
}

// acc = acc + a * b mod q (Barrett)
extern "C" __global__ void poly_mul_acc(u64 *acc, const u64 *a, const u64 *b,
                                        const ModParams *params, const u32 *limb_mod,
                                        u32 limbs, u32 log_n, u64 total) {
    HE_GPU_FOR_EACH_WORD(total) {
        const ModParams &m = params[limb_mod[(idx >> log_n) % limbs]];
        acc[idx] = add_mod(acc[idx], mul_mod(a[idx], b[idx], m), m.q);
    }
}

// out = a * s_r mod q, s_r the scalar of limb position r % limbs (Shoup, s < q)
extern "C" __global__ void poly_mul_scalar(u64 *out, const u64 *a, const u64 *s,
                                           const u64 *s_shoup, const ModParams *params,
                                           const u32 *limb_mod, u32 limbs, u32 log_n,
                                           u64 total) {
    HE_GPU_FOR_EACH_WORD(total) {
        const u32 l = (u32)((idx >> log_n) % limbs);
        const u64 q = params[limb_mod[l]].q;
        out[idx] = mul_shoup(a[idx], s[l], s_shoup[l], q);
    }
}

// out = (a - b) * s_r mod q: the last step of ModDown and of rescaling
extern "C" __global__ void poly_sub_mul_scalar(u64 *out, const u64 *a, const u64 *b,
                                               const u64 *s, const u64 *s_shoup,
                                               const ModParams *params, const u32 *limb_mod,
                                               u32 limbs, u32 log_n, u64 total) {
    HE_GPU_FOR_EACH_WORD(total) {
        const u32 l = (u32)((idx >> log_n) % limbs);
        const u64 q = params[limb_mod[l]].q;
        out[idx] = mul_shoup(sub_mod(a[idx], b[idx], q), s[l], s_shoup[l], q);
    }
}

// Automorphism in evaluation form: out[row][i] = in[row][perm[i]] (a permutation of the
// evaluation points; out must not alias in).
extern "C" __global__ void automorphism_eval(u64 *out, const u64 *in, const u32 *perm,
                                             u32 log_n, u64 total) {
    const u64 mask = (1ull << log_n) - 1;
    HE_GPU_FOR_EACH_WORD(total) {
        const u64 row_base = idx & ~mask;
        out[idx] = in[row_base + perm[idx & mask]];
    }
}

// Automorphism in coefficient form: X^j -> (-1)^floor(jk / N) X^(jk mod N), k odd
// (a scatter; out must not alias in).
extern "C" __global__ void automorphism_coeff(u64 *out, const u64 *in, u64 k,
                                              const ModParams *params, const u32 *limb_mod,
                                              u32 limbs, u32 log_n, u64 total) {
    const u64 n = 1ull << log_n;
    const u64 mask2 = 2 * n - 1;
    HE_GPU_FOR_EACH_WORD(total) {
        const u64 row = idx >> log_n;
        const u64 j = idx & (n - 1);
        const u64 e = (j * k) & mask2;
        const u64 v = in[idx];
        if (e < n) {
            out[(row << log_n) + e] = v;
        } else {
            const u64 q = params[limb_mod[row % limbs]].q;
            out[(row << log_n) + (e - n)] = v == 0 ? 0 : q - v;
        }
    }
}
