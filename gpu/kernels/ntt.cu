// he-gpu: batched negacyclic NTT over many limbs (and many polynomials) per launch.
//
// Convention (he-core `math::ntt`): forward output a^[i] = a(psi^(2 brev(i) + 1)), bit-reversed
// order; the inverse includes the N^{-1} scaling. Forward = Cooley-Tukey, inverse =
// Gentleman-Sande, merged with the psi powers (Longa & Naehrig, CANS 2016, Alg. 1 and 2),
// twiddles psi^brev(i) (inverse: psi^-brev(i)) with Shoup constants, Harvey's lazy butterflies:
// forward values stay in [0, 4q), inverse values in [0, 2q), reduced to [0, q) at the end.
//
// Strategy, with C = min(N, 2^12) (a chunk of C words = 32 KiB fits shared memory):
//  - stages whose butterfly distance t is < C act inside contiguous chunks of C words: one
//    thread block per (limb, chunk) runs them all in shared memory (`ntt_fwd_shared`,
//    `ntt_inv_shared`); for N <= 2^12 this is the whole transform, one block per limb;
//  - the log2(N/C) stages with t >= C (only for N > 2^12) pair words C apart: one thread per
//    (limb, column j < C) loads the R = N/C words j, j + C, ..., j + (R-1)C into registers and
//    runs those stages there (a radix-R pass, `ntt_fwd_strided_rK` / `ntt_inv_strided_rK`,
//    R = 2^K, K = 1..5); consecutive threads read consecutive words, so loads are coalesced.
// The forward runs strided then shared; the inverse shared then strided. Each pass reads and
// writes the data once: 2 passes (4 N words of traffic per limb) for N > 2^12, 1 otherwise.
// Indexing: blockIdx.x enumerates (row, chunk) / (row, column-block), so any number of rows
// (limbs of many polynomials) goes in one launch.

__device__ __forceinline__ void ct_butterfly(u64 &x, u64 &y, u64 w, u64 ws, u64 q, u64 two_q) {
    u64 u = x >= two_q ? x - two_q : x;
    u64 t = mul_shoup_lazy(y, w, ws, q);
    x = u + t;
    y = u - t + two_q;
}

__device__ __forceinline__ void gs_butterfly(u64 &x, u64 &y, u64 w, u64 ws, u64 q, u64 two_q) {
    u64 u = x + y;
    u = u >= two_q ? u - two_q : u;
    y = mul_shoup_lazy(x - y + two_q, w, ws, q);
    x = u;
}

// [0, 4q) -> [0, q)
__device__ __forceinline__ u64 reduce_4q(u64 x, u64 q, u64 two_q) {
    x = x >= two_q ? x - two_q : x;
    return x >= q ? x - q : x;
}

extern "C" __global__ void ntt_fwd_shared(u64 *data, const u64 *tw, const u64 *tw_shoup,
                                          const ModParams *params, const u32 *limb_mod,
                                          u32 limbs, u32 log_n, u32 log_c, u64 rows) {
    extern __shared__ u64 sh[];
    const u32 chunks_log = log_n - log_c;
    const u64 row = (u64)blockIdx.x >> chunks_log;
    const u64 chunk = (u64)blockIdx.x & ((1ull << chunks_log) - 1);
    if (row >= rows) return;
    const u32 mi = limb_mod[row % limbs];
    const ModParams m = params[mi];
    const u64 n = 1ull << log_n;
    const u32 c = 1u << log_c;
    const u64 *w = tw + (u64)mi * n;
    const u64 *ws = tw_shoup + (u64)mi * n;
    u64 *a = data + row * n + (chunk << log_c);
    for (u32 i = threadIdx.x; i < c; i += blockDim.x) sh[i] = a[i];
    __syncthreads();
    for (int log_t = (int)log_c - 1; log_t >= 0; log_t--) {
        const u32 t = 1u << log_t;
        const u64 base = (1ull << (log_n - 1 - log_t)) + (chunk << (log_c - 1 - log_t));
        for (u32 u = threadIdx.x; u < c / 2; u += blockDim.x) {
            const u32 g = u >> log_t;
            const u32 i1 = (g << (log_t + 1)) + (u & (t - 1));
            const u64 k = base + g;
            ct_butterfly(sh[i1], sh[i1 + t], w[k], ws[k], m.q, m.two_q);
        }
        __syncthreads();
    }
    for (u32 i = threadIdx.x; i < c; i += blockDim.x) a[i] = reduce_4q(sh[i], m.q, m.two_q);
}

extern "C" __global__ void ntt_inv_shared(u64 *data, const u64 *tw, const u64 *tw_shoup,
                                          const ModParams *params, const u32 *limb_mod,
                                          u32 limbs, u32 log_n, u32 log_c, u64 rows) {
    extern __shared__ u64 sh[];
    const u32 chunks_log = log_n - log_c;
    const u64 row = (u64)blockIdx.x >> chunks_log;
    const u64 chunk = (u64)blockIdx.x & ((1ull << chunks_log) - 1);
    if (row >= rows) return;
    const u32 mi = limb_mod[row % limbs];
    const ModParams m = params[mi];
    const u64 n = 1ull << log_n;
    const u32 c = 1u << log_c;
    const u64 *w = tw + (u64)mi * n;
    const u64 *ws = tw_shoup + (u64)mi * n;
    u64 *a = data + row * n + (chunk << log_c);
    for (u32 i = threadIdx.x; i < c; i += blockDim.x) sh[i] = a[i];
    __syncthreads();
    for (u32 log_t = 0; log_t < log_c; log_t++) {
        const u32 t = 1u << log_t;
        const u64 base = (1ull << (log_n - 1 - log_t)) + (chunk << (log_c - 1 - log_t));
        for (u32 u = threadIdx.x; u < c / 2; u += blockDim.x) {
            const u32 g = u >> log_t;
            const u32 i1 = (g << (log_t + 1)) + (u & (t - 1));
            const u64 k = base + g;
            gs_butterfly(sh[i1], sh[i1 + t], w[k], ws[k], m.q, m.two_q);
        }
        __syncthreads();
    }
    if (log_c == log_n) {
        // Last pass: scale by N^{-1}, fully reduced.
        for (u32 i = threadIdx.x; i < c; i += blockDim.x)
            a[i] = mul_shoup(sh[i], m.n_inv, m.n_inv_shoup, m.q);
    } else {
        for (u32 i = threadIdx.x; i < c; i += blockDim.x) a[i] = sh[i];
    }
}

// Stages with distance t >= C of the forward transform, in registers (R = 2^LOG_R = N / C).
template <int LOG_R>
__device__ __forceinline__ void ntt_fwd_strided(u64 *data, const u64 *tw, const u64 *tw_shoup,
                                                const ModParams *params, const u32 *limb_mod,
                                                u32 limbs, u32 log_n, u32 log_c, u64 rows) {
    const int R = 1 << LOG_R;
    const u64 gid = (u64)blockIdx.x * blockDim.x + threadIdx.x;
    if (gid >= (rows << log_c)) return;
    const u64 row = gid >> log_c;
    const u64 j = gid & ((1ull << log_c) - 1);
    const u32 mi = limb_mod[row % limbs];
    const ModParams m = params[mi];
    const u64 n = 1ull << log_n;
    const u64 *w = tw + (u64)mi * n;
    const u64 *ws = tw_shoup + (u64)mi * n;
    u64 *a = data + row * n + j;
    u64 x[R];
#pragma unroll
    for (int k = 0; k < R; k++) x[k] = a[(u64)k << log_c];
#pragma unroll
    for (int s = 0; s < LOG_R; s++) {
        const int h = R >> (s + 1);
#pragma unroll
        for (int k = 0; k < R; k++) {
            if ((k & h) == 0) {
                const int idx = (1 << s) + (k >> (LOG_R - s));
                ct_butterfly(x[k], x[k + h], w[idx], ws[idx], m.q, m.two_q);
            }
        }
    }
#pragma unroll
    for (int k = 0; k < R; k++) a[(u64)k << log_c] = x[k];
}

// Stages with distance t >= C of the inverse transform, in registers, then the N^{-1} scaling.
template <int LOG_R>
__device__ __forceinline__ void ntt_inv_strided(u64 *data, const u64 *tw, const u64 *tw_shoup,
                                                const ModParams *params, const u32 *limb_mod,
                                                u32 limbs, u32 log_n, u32 log_c, u64 rows) {
    const int R = 1 << LOG_R;
    const u64 gid = (u64)blockIdx.x * blockDim.x + threadIdx.x;
    if (gid >= (rows << log_c)) return;
    const u64 row = gid >> log_c;
    const u64 j = gid & ((1ull << log_c) - 1);
    const u32 mi = limb_mod[row % limbs];
    const ModParams m = params[mi];
    const u64 n = 1ull << log_n;
    const u64 *w = tw + (u64)mi * n;
    const u64 *ws = tw_shoup + (u64)mi * n;
    u64 *a = data + row * n + j;
    u64 x[R];
#pragma unroll
    for (int k = 0; k < R; k++) x[k] = a[(u64)k << log_c];
#pragma unroll
    for (int lh = 0; lh < LOG_R; lh++) {
        const int h = 1 << lh;
#pragma unroll
        for (int k = 0; k < R; k++) {
            if ((k & h) == 0) {
                const int idx = (R >> (lh + 1)) + (k >> (lh + 1));
                gs_butterfly(x[k], x[k + h], w[idx], ws[idx], m.q, m.two_q);
            }
        }
    }
#pragma unroll
    for (int k = 0; k < R; k++)
        a[(u64)k << log_c] = mul_shoup(x[k], m.n_inv, m.n_inv_shoup, m.q);
}

#define HE_GPU_STRIDED(K)                                                                      \
    extern "C" __global__ void ntt_fwd_strided_r##K(u64 *data, const u64 *tw,                  \
                                                    const u64 *tw_shoup,                       \
                                                    const ModParams *params,                   \
                                                    const u32 *limb_mod, u32 limbs,            \
                                                    u32 log_n, u32 log_c, u64 rows) {          \
        ntt_fwd_strided<K>(data, tw, tw_shoup, params, limb_mod, limbs, log_n, log_c, rows);  \
    }                                                                                          \
    extern "C" __global__ void ntt_inv_strided_r##K(u64 *data, const u64 *tw,                  \
                                                    const u64 *tw_shoup,                       \
                                                    const ModParams *params,                   \
                                                    const u32 *limb_mod, u32 limbs,            \
                                                    u32 log_n, u32 log_c, u64 rows) {          \
        ntt_inv_strided<K>(data, tw, tw_shoup, params, limb_mod, limbs, log_n, log_c, rows);  \
    }

HE_GPU_STRIDED(1)
HE_GPU_STRIDED(2)
HE_GPU_STRIDED(3)
HE_GPU_STRIDED(4)
HE_GPU_STRIDED(5)
