// he-gpu: RNS basis operations of hybrid key switching.
//
// Fast base conversion (Bajard, Eynard, Hasan, Zucca, SAC 2016; Halevi, Polyakov, Shoup,
// CT-RSA 2019), approximate form, as he-core `math::rns::BaseConverter::convert_approx`:
//     y_i   = x_i * (A/a_i)^{-1} mod a_i                       (Shoup)
//     out_j = sum_i y_i * (A/a_i mod b_j) mod b_j              (128-bit lazy sums, Barrett)
// One thread per coefficient and per tile of BC_TILE output limbs: y_i is computed once per
// tile and multiplied into BC_TILE 128-bit accumulators; sums are reduced every 15 terms
// (each product < 2^124, so 16 of them fit 128 bits). Reads of x are coalesced over
// coefficients. Grid: x = coefficient blocks, y = polynomial * tile.
//
// Key-switching inner product (Han & Ki, CT-RSA 2020, hybrid key switching): for the
// ModUp-extended digits d_j over Q_l u P (evaluation form) and the key parts (b_j, a_j),
//     acc_0 += sum_j d_j * b_j,   acc_1 += sum_j d_j * a_j     (mod each prime)
// one thread per word of the Q_l u P polynomial, both components at once (each digit word is
// read once), 128-bit lazy sums reduced every 15 digits. The key is read in he-core's layout
// (`rlwe::keys`): for each digit j, for each component c, (L+1) Q limbs then k P limbs; at a
// level l < L only the first l+1 Q limbs of each part are used, in place.

#define BC_TILE 8

extern "C" __global__ void base_convert(u64 *out, const u64 *in, const ModParams *params,
                                        const u32 *in_mod, const u32 *out_mod, u32 ka, u32 kb,
                                        u32 log_n, const u64 *a_hat_inv,
                                        const u64 *a_hat_inv_shoup, const u64 *a_hat_mod_b) {
    const u64 n = 1ull << log_n;
    const u64 c = (u64)blockIdx.x * blockDim.x + threadIdx.x;
    if (c >= n) return;
    const u32 tiles = (kb + BC_TILE - 1) / BC_TILE;
    const u64 poly = blockIdx.y / tiles;
    const u32 j0 = (blockIdx.y % tiles) * BC_TILE;
    const u64 *x = in + poly * ka * n + c;
    u64 lo[BC_TILE], hi[BC_TILE];
#pragma unroll
    for (int t = 0; t < BC_TILE; t++) {
        lo[t] = 0;
        hi[t] = 0;
    }
    for (u32 i = 0; i < ka; i++) {
        const u64 qa = params[in_mod[i]].q;
        const u64 y = mul_shoup(x[(u64)i * n], a_hat_inv[i], a_hat_inv_shoup[i], qa);
#pragma unroll
        for (int t = 0; t < BC_TILE; t++) {
            const u32 j = j0 + t;
            if (j < kb) mac_128(lo[t], hi[t], y, a_hat_mod_b[(u64)j * ka + i]);
        }
        if (i % 15 == 14) {
#pragma unroll
            for (int t = 0; t < BC_TILE; t++) {
                const u32 j = j0 + t;
                if (j < kb) {
                    lo[t] = reduce_128(lo[t], hi[t], params[out_mod[j]]);
                    hi[t] = 0;
                }
            }
        }
    }
    u64 *o = out + poly * kb * n + c;
#pragma unroll
    for (int t = 0; t < BC_TILE; t++) {
        const u32 j = j0 + t;
        if (j < kb) o[(u64)j * n] = reduce_128(lo[t], hi[t], params[out_mod[j]]);
    }
}

// acc: 2 polynomials (c = 0, 1) of `rows` = q_rows + p_rows limbs; digits: `dnum` polynomials
// of `rows` limbs; key: the whole key, `key_q` Q limbs and `p_rows` P limbs per part.
extern "C" __global__ void ks_inner_product(u64 *acc, const u64 *digits, const u64 *key,
                                            const ModParams *params, const u32 *limb_mod,
                                            u32 rows, u32 q_rows, u32 key_q, u32 dnum,
                                            u32 log_n) {
    const u64 n = 1ull << log_n;
    const u64 words = (u64)rows << log_n;
    const u64 comp = (u64)(key_q + rows - q_rows) << log_n;
    for (u64 idx = (u64)blockIdx.x * blockDim.x + threadIdx.x; idx < words;
         idx += (u64)gridDim.x * blockDim.x) {
        const u32 r = (u32)(idx >> log_n);
        const u64 i = idx & (n - 1);
        const u64 kr = r < q_rows ? (u64)r : (u64)(key_q + r - q_rows);
        const ModParams &m = params[limb_mod[r]];
        u64 lo0 = 0, hi0 = 0, lo1 = 0, hi1 = 0;
        for (u32 j = 0; j < dnum; j++) {
            const u64 d = digits[(u64)j * words + idx];
            const u64 *kb = key + (u64)(2 * j) * comp + (kr << log_n) + i;
            mac_128(lo0, hi0, d, kb[0]);
            mac_128(lo1, hi1, d, kb[comp]);
            if (j % 15 == 14) {
                lo0 = reduce_128(lo0, hi0, m);
                hi0 = 0;
                lo1 = reduce_128(lo1, hi1, m);
                hi1 = 0;
            }
        }
        acc[idx] = add_mod(acc[idx], reduce_128(lo0, hi0, m), m.q);
        acc[words + idx] = add_mod(acc[words + idx], reduce_128(lo1, hi1, m), m.q);
    }
}
