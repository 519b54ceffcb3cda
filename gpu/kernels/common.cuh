// he-gpu: shared definitions of every kernel source (prepended by the Rust side before NVRTC).
//
// Arithmetic modulo a prime q < 2^62 on 64-bit words, as in he-core's `math::modulus`:
//  - Barrett reduction of a 128-bit value with floor(2^128 / q) (SEAL's barrett_reduce_128),
//    ported operation for operation so that results are bit-identical to the CPU;
//  - Shoup multiplication by a fixed operand w with w' = floor(w * 2^64 / q) (Harvey 2014,
//    Alg. 2): one __umul64hi and two low products, result in [0, 2q) before correction.
// The 128-bit products use __umul64hi (mul.hi.u64) for the high word.
//
// Layout: a batch is `rows` limbs of N words each, limb-major; row r of a polynomial with
// `limbs` limbs uses modulus index limb_mod[r % limbs] into the per-modulus tables.

typedef unsigned long long u64;
typedef unsigned int u32;

// Per-modulus constants, 64 bytes (mirrors `ModParams` in src/device/ring.rs).
struct ModParams {
    u64 q;
    u64 barrett_lo;   // floor(2^128 / q), low word
    u64 barrett_hi;   // floor(2^128 / q), high word
    u64 n_inv;        // N^{-1} mod q
    u64 n_inv_shoup;  // floor(n_inv * 2^64 / q)
    u64 two_q;
    u64 pad0;
    u64 pad1;
};

// Barrett reduction of lo + 2^64 hi to [0, q) (he-core `Modulus::reduce_u128`).
__device__ __forceinline__ u64 reduce_128(u64 lo, u64 hi, const ModParams &m) {
    u64 carry = __umul64hi(lo, m.barrett_lo);
    u64 mid_lo = lo * m.barrett_hi;
    u64 mid_hi = __umul64hi(lo, m.barrett_hi);
    u64 mid2_lo = hi * m.barrett_lo;
    u64 mid2_hi = __umul64hi(hi, m.barrett_lo);
    u64 sum = mid_lo + carry;
    u64 c1 = sum < carry ? 1ull : 0ull;
    u64 sum2 = sum + mid2_lo;
    u64 c2 = sum2 < mid2_lo ? 1ull : 0ull;
    u64 quot = mid_hi + mid2_hi + c1 + c2;
    quot += hi * m.barrett_hi;
    u64 r = lo - quot * m.q;
    return r >= m.q ? r - m.q : r;
}

// Barrett reduction of any 64-bit word to [0, q) (he-core `Modulus::reduce`).
__device__ __forceinline__ u64 reduce_64(u64 x, const ModParams &m) {
    u64 quot = __umul64hi(x, m.barrett_hi);
    u64 r = x - quot * m.q;
    return r >= m.q ? r - m.q : r;
}

// (a * b) mod q for a, b < q.
__device__ __forceinline__ u64 mul_mod(u64 a, u64 b, const ModParams &m) {
    return reduce_128(a * b, __umul64hi(a, b), m);
}

__device__ __forceinline__ u64 add_mod(u64 a, u64 b, u64 q) {
    u64 s = a + b;
    return s >= q ? s - q : s;
}

__device__ __forceinline__ u64 sub_mod(u64 a, u64 b, u64 q) {
    return a >= b ? a - b : a + q - b;
}

// Lazy Shoup product a * w mod q in [0, 2q), any a < 2^64, w < q.
__device__ __forceinline__ u64 mul_shoup_lazy(u64 a, u64 w, u64 w_shoup, u64 q) {
    return a * w - __umul64hi(a, w_shoup) * q;
}

// Shoup product a * w mod q in [0, q).
__device__ __forceinline__ u64 mul_shoup(u64 a, u64 w, u64 w_shoup, u64 q) {
    u64 r = mul_shoup_lazy(a, w, w_shoup, q);
    return r >= q ? r - q : r;
}

// 128-bit accumulator: (lo, hi) += a * b.
__device__ __forceinline__ void mac_128(u64 &lo, u64 &hi, u64 a, u64 b) {
    u64 p_lo = a * b;
    u64 p_hi = __umul64hi(a, b);
    lo += p_lo;
    hi += p_hi + (lo < p_lo ? 1ull : 0ull);
}
