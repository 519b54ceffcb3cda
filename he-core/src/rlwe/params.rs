//! RLWE parameters: an unchecked [`ParametersLiteral`] becomes immutable, validated
//! [`Parameters`] through one constructor (after Lattigo), or parameters are derived from user
//! intent ([`ParametersIntent`]: depth, scale bits, ring degree or "smallest secure").
//!
//! Security: `log2(QP)` is checked against one table, [`SECURITY_TABLE_128`]: the
//! HomomorphicEncryption.org standard's 128-bit classical bounds for a uniform ternary secret
//! (Albrecht et al., "Homomorphic Encryption Standard", 2018/2021) for `N ≤ 2^15`, and for
//! `N = 2^16, 2^17` the values OpenFHE enforces (see the table's documentation). A weaker set is
//! refused unless the literal says [`Security::InsecureForTesting`] by name; loading a
//! serialized insecure set needs the same opt-in
//! ([`Parameters::from_bytes_allow_insecure`](Parameters::from_bytes_allow_insecure)).

use super::ks_cost::{KeySwitching, KsModel};
use crate::math::ntt::{plan as cpu_plan, NttPlan};
use crate::math::primes::{check_ntt_prime, ntt_primes};
use crate::ring::{KeySwitchBasis, RingContext};
use crate::{Error, Result};
use std::sync::Arc;

/// Largest `log2(QP)` for 128-bit classical security with a uniform ternary secret, by ring
/// degree.
///
/// Source: one table, OpenFHE's `StdLatticeParm` list (`src/core/lib/lattice/stdlatticeparms.cpp`,
/// entries `HEStd_ternary, HEStd_128_classic`, openfhe-development at commit `f387eaf`). Its
/// values for `N = 2^10 .. 2^15` are those of the HomomorphicEncryption.org standard (Albrecht,
/// Chase, Chen, Ding, Goldwasser, Gorbunov, Halevi, Hoffstein, Laine, Lauter, Lokam, Micciancio,
/// Moody, Morrison, Sahai, Vaikuntanathan, "Homomorphic Encryption Standard", 2018/2021,
/// Table 1); for `N = 2^16` and `2^17`, which the standard does not tabulate, OpenFHE's
/// lattice-estimator values 1747 and 3523 (earlier releases allowed 1772 resp. nothing; HomE
/// previously used 1761, which let a 1755-bit set pass as 128-bit).
pub const SECURITY_TABLE_128: [(usize, u32); 8] = [
    (1 << 10, 27),
    (1 << 11, 54),
    (1 << 12, 109),
    (1 << 13, 218),
    (1 << 14, 438),
    (1 << 15, 881),
    (1 << 16, 1747),
    (1 << 17, 3523),
];

/// Smallest Hamming weight accepted for a [`SecretDistribution::HammingWeight`] secret.
///
/// Below 32 nonzero coefficients a fixed-weight secret is outside every published security
/// estimate for sparse RLWE secrets (the sparsest in use are the `h = 32` ephemeral secrets of
/// sparse-secret encapsulation, Bossuat et al. 2022), and `h = 0` is the all-zero secret that
/// decrypts without any key. The largest accepted weight is `N`.
pub const MIN_HAMMING_WEIGHT: usize = 32;

/// Most ciphertext primes a chain may have: at 20 bits each, `N = 2^17`'s bound (3523 bits)
/// holds 176; loading and intents refuse more.
pub const MAX_CHAIN_PRIMES: usize = 256;

/// Largest `log_scale` accepted (the encoder works with scales below `2^120`).
pub const MAX_LOG_SCALE: f64 = 120.0;

/// The 128-bit bound on `log2(QP)` for degree `n`, if tabulated.
pub fn max_log_qp_128(n: usize) -> Option<u32> {
    SECURITY_TABLE_128
        .iter()
        .find(|(d, _)| *d == n)
        .map(|(_, b)| *b)
}

/// Security requirement of a parameter set.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default)]
pub enum Security {
    /// 128-bit classical security (enforced; the default).
    #[default]
    Bits128,
    /// No check. For tests and toy examples only; the name is the opt-in.
    InsecureForTesting,
}

/// Distribution of the secret key.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default)]
pub enum SecretDistribution {
    /// Uniform over `{-1, 0, 1}^N` (the distribution the security table assumes).
    #[default]
    UniformTernary,
    /// Ternary with exactly `h` nonzero coefficients (sparse secrets, as used before
    /// bootstrapping; note the lower security margin).
    HammingWeight(usize),
}

/// An unchecked description of parameters by prime sizes.
#[derive(Debug, Clone, PartialEq)]
pub struct ParametersLiteral {
    /// log2 of the ring degree `N`.
    pub log_n: u32,
    /// Bit sizes of the ciphertext primes `q_0, ..., q_L` (20..=61 each). `q_0` is the base
    /// prime that remains at the last level; `q_1..q_L` are consumed by rescaling.
    pub log_q: Vec<u32>,
    /// Bit sizes of the special primes `p_0, ..., p_{k-1}` of hybrid key switching.
    pub log_p: Vec<u32>,
    /// Number of primes per key-switching digit (`α`); `dnum = ⌈(L+1)/α⌉`. `None` picks the
    /// largest `α` with `P ≥ max D_j`, i.e. `α` primes of `Q` fitting under `P`'s size.
    pub alpha: Option<usize>,
    /// log2 of the default scale `Δ`.
    pub log_scale: f64,
    /// Secret distribution.
    pub secret: SecretDistribution,
    /// Security requirement.
    pub security: Security,
}

/// User intent: depth, scale and (optionally) ring degree; the library derives the chain.
#[derive(Debug, Clone, PartialEq)]
pub struct ParametersIntent {
    /// Multiplicative depth (number of rescalings) the computation needs.
    pub depth: usize,
    /// Bits of the scale `Δ` (also the size of each rescaling prime), 20..=60.
    pub scale_bits: u32,
    /// Bits of precision wanted above the scale in the base prime `q_0` (integer part of the
    /// values plus margin); `q_0` gets `scale_bits + int_bits` bits, capped at 61.
    pub int_bits: u32,
    /// `log2 N`, or `None` for the smallest secure degree.
    pub log_n: Option<u32>,
    /// Key-switching digits wanted, or `None` for the fewest digits that stay secure
    /// (fewest digits = fastest key switching). The older spelling of
    /// [`KeySwitching::Digits`]: `Some(d)` takes precedence over `key_switching`.
    pub dnum: Option<usize>,
    /// How digits and special primes are chosen (when `dnum` is `None`): default
    /// [`KeySwitching::Fewest`] (the fewest secure digits, 60-bit special primes), or the cost
    /// model's choice for a demand ([`KeySwitching::Auto`], see [`ks_cost`](super::ks_cost)).
    pub key_switching: KeySwitching,
}

impl ParametersIntent {
    /// Depth and scale bits, other choices automatic (20 integer bits, smallest secure N).
    pub fn new(depth: usize, scale_bits: u32) -> Self {
        Self {
            depth,
            scale_bits,
            int_bits: 20,
            log_n: None,
            dnum: None,
            key_switching: KeySwitching::Fewest,
        }
    }
}

/// Makes the NTT plan for one `(N, q)`: the CPU default, or a device backend chosen explicitly
/// by the caller (e.g. `he-gpu`'s). Whatever it returns is used for every limb of that prime;
/// nothing falls back silently.
pub type NttFactory = dyn Fn(usize, u64) -> Result<NttPlan> + Sync;

/// Validated, immutable parameters: the prime chain with its NTT tables and key-switching
/// constants. Shared by every object made under them (`Arc`).
#[derive(Debug)]
pub struct Parameters {
    literal: ParametersLiteral,
    q: Vec<u64>,
    p: Vec<u64>,
    ring_q: Arc<RingContext>,
    ring_p: Arc<RingContext>,
    ks: KeySwitchBasis,
    hash: u64,
}

impl Parameters {
    /// Validates a literal: degree in `2^4..=2^17`, prime sizes in `20..=61`, the chain
    /// generated deterministically (distinct primes ≡ 1 mod 2N), `α` consistent, and security.
    pub fn new(literal: ParametersLiteral) -> Result<Arc<Self>> {
        let n = check_literal(&literal)?;
        if literal.log_q.is_empty() {
            return Err(Error::InvalidParameters(
                "the ciphertext chain Q needs at least one prime".into(),
            ));
        }
        if literal.log_p.is_empty() {
            return Err(Error::InvalidParameters(
                "hybrid key switching needs at least one special prime P".into(),
            ));
        }
        let mut used: Vec<u64> = Vec::new();
        let mut take = |bits: u32| -> Result<u64> {
            let q = ntt_primes(bits, 1, n, &used)?[0];
            used.push(q);
            Ok(q)
        };
        let q = literal
            .log_q
            .iter()
            .map(|b| take(*b))
            .collect::<Result<Vec<_>>>()?;
        let p = literal
            .log_p
            .iter()
            .map(|b| take(*b))
            .collect::<Result<Vec<_>>>()?;
        Self::from_primes(literal, q, p)
    }

    /// Like [`new`](Self::new), with every NTT plan made by `factory` (a GPU backend, or the
    /// scalar reference for testing). The rest of the scheme is unchanged.
    pub fn new_with_backend(literal: ParametersLiteral, factory: &NttFactory) -> Result<Arc<Self>> {
        let cpu = Self::new(literal)?;
        Self::from_primes_with(cpu.literal.clone(), cpu.q.clone(), cpu.p.clone(), factory)
    }

    /// Validates explicit primes (for interoperability with other libraries' chains). The
    /// literal's bit sizes are ignored except for recording; `q` and `p` are checked as NTT
    /// primes for `N`, distinct, and against the security table.
    pub fn from_primes(literal: ParametersLiteral, q: Vec<u64>, p: Vec<u64>) -> Result<Arc<Self>> {
        Self::from_primes_with(literal, q, p, &cpu_plan)
    }

    /// [`from_primes`](Self::from_primes) with NTT plans made by `factory`.
    pub fn from_primes_with(
        mut literal: ParametersLiteral,
        q: Vec<u64>,
        p: Vec<u64>,
        factory: &NttFactory,
    ) -> Result<Arc<Self>> {
        let n = check_literal(&literal)?;
        if q.is_empty() {
            return Err(Error::InvalidParameters(
                "the ciphertext chain Q needs at least one prime, found none".into(),
            ));
        }
        if p.is_empty() {
            return Err(Error::InvalidParameters(
                "hybrid key switching needs at least one special prime P, found none".into(),
            ));
        }
        let mut seen: Vec<u64> = Vec::with_capacity(q.len() + p.len());
        for x in q.iter().chain(&p) {
            if seen.contains(x) {
                return Err(Error::InvalidModulus {
                    modulus: *x,
                    reason: "repeated in the chain: Q and P must be distinct primes".into(),
                });
            }
            seen.push(*x);
        }
        for x in q.iter().chain(&p) {
            check_ntt_prime(*x, n)?;
        }
        literal.log_q = q.iter().map(|x| 64 - x.leading_zeros()).collect();
        literal.log_p = p.iter().map(|x| 64 - x.leading_zeros()).collect();
        let log_qp: f64 = q.iter().chain(&p).map(|x| (*x as f64).log2()).sum();
        let log_qp_bits = log_qp.ceil() as u32;
        if literal.security == Security::Bits128 {
            if let SecretDistribution::HammingWeight(_) = literal.secret {
                return Err(Error::InvalidParameters(
                    "a fixed-Hamming-weight secret is not covered by the 128-bit table; choose Security::InsecureForTesting explicitly".into(),
                ));
            }
            match max_log_qp_128(n) {
                Some(max) if log_qp_bits <= max => {}
                Some(max) => {
                    return Err(Error::Insecure {
                        n,
                        log_qp: log_qp_bits,
                        max_log_qp: max,
                    })
                }
                None => {
                    return Err(Error::Insecure {
                        n,
                        log_qp: log_qp_bits,
                        max_log_qp: 0,
                    })
                }
            }
        }
        let log_q_total: f64 = q.iter().map(|x| (*x as f64).log2()).sum();
        if literal.log_scale >= log_q_total {
            return Err(Error::InvalidParameters(format!(
                "log_scale {} must be below log2(Q) = {log_q_total:.1}: a message at the default scale would wrap modulo Q",
                literal.log_scale
            )));
        }
        let max_q_bits = q.iter().map(|x| (*x as f64).log2()).fold(0.0, f64::max);
        let log_p: f64 = p.iter().map(|x| (*x as f64).log2()).sum();
        let alpha = match literal.alpha {
            Some(a) if a == 0 || a > q.len() => {
                return Err(Error::InvalidParameters(format!(
                    "alpha = {a} primes per digit, expected 1..={}",
                    q.len()
                )))
            }
            Some(a) => a,
            None => ((log_p / max_q_bits).floor() as usize).clamp(1, q.len()),
        };
        literal.alpha = Some(alpha);
        let ring_q = RingContext::with_plans(
            n,
            q.iter()
                .map(|x| factory(n, *x))
                .collect::<Result<Vec<_>>>()?,
        )?;
        let ring_p = RingContext::with_plans(
            n,
            p.iter()
                .map(|x| factory(n, *x))
                .collect::<Result<Vec<_>>>()?,
        )?;
        let ks = KeySwitchBasis::new(ring_q.clone(), ring_p.clone(), alpha)?;
        let hash = params_hash(&literal, &q, &p);
        Ok(Arc::new(Self {
            literal,
            q,
            p,
            ring_q,
            ring_p,
            ks,
            hash,
        }))
    }

    /// Derives parameters from intent: `q_0` of `scale_bits + int_bits` bits, `depth` primes of
    /// `scale_bits` bits, then special primes of 60 bits, as many as the digit size needs; the
    /// degree is the smallest whose 128-bit bound holds (or the one asked, checked), the digit
    /// count the smallest that stays secure (or the one asked).
    pub fn from_intent(intent: &ParametersIntent) -> Result<Arc<Self>> {
        if !(20..=60).contains(&intent.scale_bits) {
            return Err(Error::InvalidParameters(format!(
                "scale_bits = {}, expected 20..=60",
                intent.scale_bits
            )));
        }
        if intent.depth > MAX_CHAIN_PRIMES - 1 {
            return Err(Error::InvalidParameters(format!(
                "depth {} needs {} ciphertext primes, at most {MAX_CHAIN_PRIMES} are supported (no secure ring degree holds more)",
                intent.depth,
                intent.depth.saturating_add(1)
            )));
        }
        let q0 = intent.scale_bits.saturating_add(intent.int_bits).min(61);
        let mut log_q = vec![q0];
        log_q.extend(std::iter::repeat_n(intent.scale_bits, intent.depth));
        let limbs = log_q.len();
        let log_ns: Vec<u32> = match intent.log_n {
            Some(l) if !(4..=17).contains(&l) => {
                return Err(Error::InvalidDegree {
                    found: 1usize.checked_shl(l).unwrap_or(0),
                    min: 16,
                    max: 1 << 17,
                })
            }
            Some(l) => vec![l],
            None => (10..=17).collect(),
        };
        let mut last_err = Error::InvalidParameters("no ring degree tried".into());
        let policy = match intent.dnum {
            Some(d) => KeySwitching::Digits(d),
            None => intent.key_switching.clone(),
        };
        for log_n in log_ns {
            let n = 1usize << log_n;
            let bound = max_log_qp_128(n).unwrap_or(0);
            let dnums: Vec<usize> = match &policy {
                KeySwitching::Digits(d) => vec![*d],
                KeySwitching::Fewest => (1..=limbs).collect(),
                KeySwitching::Auto(demand) => {
                    // The cost model's choice at this degree; the next degree when nothing
                    // here is secure or within the budget.
                    let choice = match KsModel::new(log_n, &log_q).and_then(|m| m.choose(demand)) {
                        Ok(c) => c.chosen,
                        Err(e) => {
                            last_err = e;
                            continue;
                        }
                    };
                    let lit = ParametersLiteral {
                        log_n,
                        log_q: log_q.clone(),
                        log_p: choice.log_p,
                        alpha: Some(choice.alpha),
                        log_scale: intent.scale_bits as f64,
                        secret: SecretDistribution::UniformTernary,
                        security: Security::Bits128,
                    };
                    match Self::new(lit) {
                        Ok(p) => return Ok(p),
                        Err(e) => last_err = e,
                    }
                    continue;
                }
            };
            for dnum in dnums {
                if dnum == 0 || dnum > limbs {
                    return Err(Error::InvalidParameters(format!(
                        "dnum = {dnum}, expected 1..={limbs}"
                    )));
                }
                let alpha = limbs.div_ceil(dnum);
                // P must exceed the largest digit: the α largest primes of Q.
                let mut sizes = log_q.clone();
                sizes.sort_unstable_by(|a, b| b.cmp(a));
                let digit_bits: u32 = sizes.iter().take(alpha).sum();
                let k = digit_bits.div_ceil(60) as usize;
                let log_p = vec![60u32; k.max(1)];
                let total: u32 = log_q.iter().sum::<u32>() + log_p.iter().sum::<u32>();
                if total > bound {
                    last_err = Error::Insecure {
                        n,
                        log_qp: total,
                        max_log_qp: bound,
                    };
                    continue;
                }
                let lit = ParametersLiteral {
                    log_n,
                    log_q: log_q.clone(),
                    log_p,
                    alpha: Some(alpha),
                    log_scale: intent.scale_bits as f64,
                    secret: SecretDistribution::UniformTernary,
                    security: Security::Bits128,
                };
                match Self::new(lit) {
                    Ok(p) => return Ok(p),
                    Err(e) => last_err = e,
                }
            }
        }
        Err(last_err)
    }

    /// The literal (with `alpha` and bit sizes filled in).
    pub fn literal(&self) -> &ParametersLiteral {
        &self.literal
    }
    /// Ring degree `N`.
    pub fn degree(&self) -> usize {
        self.ring_q.degree()
    }
    /// Number of complex slots, `N/2`.
    pub fn slots(&self) -> usize {
        self.degree() / 2
    }
    /// The ciphertext primes.
    pub fn q(&self) -> &[u64] {
        &self.q
    }
    /// The special primes.
    pub fn p(&self) -> &[u64] {
        &self.p
    }
    /// Highest level `L` (number of ciphertext primes minus one).
    pub fn max_level(&self) -> usize {
        self.q.len() - 1
    }
    /// Default scale `Δ = 2^log_scale`.
    pub fn default_scale(&self) -> f64 {
        self.literal.log_scale.exp2()
    }
    /// The ring over `Q`.
    pub fn ring_q(&self) -> &Arc<RingContext> {
        &self.ring_q
    }
    /// The ring over `P`.
    pub fn ring_p(&self) -> &Arc<RingContext> {
        &self.ring_p
    }
    /// Key-switching constants.
    pub fn key_switch_basis(&self) -> &KeySwitchBasis {
        &self.ks
    }
    /// Number of key-switching digits at the top level.
    pub fn dnum(&self) -> usize {
        self.ks.dnum()
    }
    /// `log2(Q_level)`: the bits of the first `level + 1` primes of `Q` (all of them when
    /// `level` is beyond the chain).
    pub fn log_q_at(&self, level: usize) -> f64 {
        self.q
            .iter()
            .take(level.saturating_add(1))
            .map(|x| (*x as f64).log2())
            .sum()
    }
    /// `log2(QP)`.
    pub fn log_qp(&self) -> f64 {
        self.q
            .iter()
            .chain(&self.p)
            .map(|x| (*x as f64).log2())
            .sum()
    }
    /// A stable 64-bit hash of everything that determines compatibility of keys and
    /// ciphertexts (degree, primes, digits, secret distribution, default scale); carried by
    /// serialized objects. The security flag is not hashed: it changes no object's meaning, and
    /// it is re-derived from the primes when parameters are loaded.
    pub fn hash(&self) -> u64 {
        self.hash
    }
    /// Checks that an object made for parameters `found` can be used here.
    pub fn check_hash(&self, found: u64) -> Result<()> {
        if found != self.hash {
            return Err(Error::ParameterMismatch {
                expected: self.hash,
                found,
            });
        }
        Ok(())
    }
    /// A one-line description (for logs and reports).
    pub fn describe(&self) -> String {
        format!(
            "N=2^{} L={} log2(QP)={:.1} Q bits={:?} P bits={:?} dnum={} scale=2^{} {:?}",
            self.literal.log_n,
            self.max_level(),
            self.log_qp(),
            self.literal.log_q,
            self.literal.log_p,
            self.dnum(),
            self.literal.log_scale,
            self.literal.security
        )
    }
}

/// The checks on a literal that do not need its primes: degree, special primes, scale, secret
/// distribution. Returns `N`. Shared by every constructor and by loading.
fn check_literal(literal: &ParametersLiteral) -> Result<usize> {
    if !(4..=17).contains(&literal.log_n) {
        return Err(Error::InvalidDegree {
            found: 1usize.checked_shl(literal.log_n).unwrap_or(0),
            min: 16,
            max: 1 << 17,
        });
    }
    let n = 1usize << literal.log_n;
    if !(literal.log_scale.is_finite()
        && literal.log_scale > 0.0
        && literal.log_scale < MAX_LOG_SCALE)
    {
        return Err(Error::InvalidParameters(format!(
            "log_scale {} outside (0, {MAX_LOG_SCALE}): the scale must be a finite power of two above 1",
            literal.log_scale
        )));
    }
    if let SecretDistribution::HammingWeight(h) = literal.secret {
        if !(MIN_HAMMING_WEIGHT..=n).contains(&h) {
            return Err(Error::InvalidParameters(format!(
                "Hamming weight {h} outside {MIN_HAMMING_WEIGHT}..={n} (N): a secret with fewer nonzero coefficients is trivially searchable, h = 0 is no secret at all"
            )));
        }
    }
    Ok(n)
}

/// FNV-1a over the canonical little-endian encoding: stable across platforms and versions.
fn params_hash(lit: &ParametersLiteral, q: &[u64], p: &[u64]) -> u64 {
    let mut h = Fnv1a::new();
    h.write(b"HomE-params-v2");
    h.write(&lit.log_n.to_le_bytes());
    h.write(&(q.len() as u64).to_le_bytes());
    q.iter().for_each(|x| h.write(&x.to_le_bytes()));
    h.write(&(p.len() as u64).to_le_bytes());
    p.iter().for_each(|x| h.write(&x.to_le_bytes()));
    h.write(&(lit.alpha.unwrap_or(0) as u64).to_le_bytes());
    match lit.secret {
        SecretDistribution::UniformTernary => h.write(&[0]),
        SecretDistribution::HammingWeight(w) => {
            h.write(&[1]);
            h.write(&(w as u64).to_le_bytes())
        }
    }
    // The default scale changes what a plaintext means (v2: v1 left it out).
    h.write(&lit.log_scale.to_bits().to_le_bytes());
    h.finish()
}

/// 64-bit FNV-1a (Fowler–Noll–Vo), used for parameter fingerprints.
#[derive(Debug, Clone, Copy)]
pub struct Fnv1a(u64);
impl Fnv1a {
    /// Fresh state.
    pub fn new() -> Self {
        Self(0xcbf29ce484222325)
    }
    /// Absorbs bytes.
    pub fn write(&mut self, bytes: &[u8]) {
        for b in bytes {
            self.0 = (self.0 ^ *b as u64).wrapping_mul(0x100000001b3);
        }
    }
    /// The digest.
    pub fn finish(&self) -> u64 {
        self.0
    }
}
impl Default for Fnv1a {
    fn default() -> Self {
        Self::new()
    }
}

/// Named, vetted parameter sets. Each prime is explained.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Preset {
    /// N = 2^14, Q = [60, 40 × 6], P = [60], Δ = 2^40, α = 1 (dnum = 7); log2(QP) = 360 ≤ 438.
    /// The 60-bit `q_0` keeps 20 bits of integer part above the 40-bit scale at the last
    /// level; each 40-bit prime is consumed by one rescaling (depth 6); one 60-bit special prime
    /// exceeds every single-prime digit. This is SEAL's and TenSEAL's classic chain, so the peer
    /// benchmark compares like with like.
    N14Depth6,
    /// N = 2^15, Q = [60, 40 × 14], P = [60], Δ = 2^40, dnum = 15; log2(QP) = 740 ≤ 881. Depth 14.
    N15Depth14,
    /// N = 2^16, Q = [60, 40 × 30], P = [60], Δ = 2^40, dnum = 31; log2(QP) = 1320 ≤ 1761.
    /// Depth 30 — deep networks without bootstrapping.
    N16Depth30,
    /// N = 2^16, Q = [60, 50 × 24], P = [61 × 3], α = 3 (dnum = 9); log2(QP) ≈ 1443 ≤ 1761.
    /// 50-bit primes sit on tfhe-ntt's IFMA path; fewer digits make key switching cheaper.
    N16Depth24Fast,
}

impl Preset {
    /// The literal of this preset.
    pub fn literal(self) -> ParametersLiteral {
        let (log_n, log_q, log_p, alpha, log_scale) = match self {
            Preset::N14Depth6 => (14, [vec![60], vec![40; 6]].concat(), vec![60], 1, 40.0),
            Preset::N15Depth14 => (15, [vec![60], vec![40; 14]].concat(), vec![60], 1, 40.0),
            Preset::N16Depth30 => (16, [vec![60], vec![40; 30]].concat(), vec![60], 1, 40.0),
            Preset::N16Depth24Fast => (16, [vec![60], vec![50; 24]].concat(), vec![61; 3], 3, 50.0),
        };
        ParametersLiteral {
            log_n,
            log_q,
            log_p,
            alpha: Some(alpha),
            log_scale,
            secret: SecretDistribution::UniformTernary,
            security: Security::Bits128,
        }
    }

    /// Validated parameters of this preset.
    pub fn parameters(self) -> Result<Arc<Parameters>> {
        Parameters::new(self.literal())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn presets_are_secure_and_valid() {
        for p in [
            Preset::N14Depth6,
            Preset::N15Depth14,
            Preset::N16Depth30,
            Preset::N16Depth24Fast,
        ] {
            let params = p.parameters().unwrap();
            let bound = max_log_qp_128(params.degree()).unwrap() as f64;
            assert!(params.log_qp() <= bound, "{}", params.describe());
        }
    }

    #[test]
    fn insecure_refused_unless_named() {
        let mut lit = Preset::N14Depth6.literal();
        lit.log_q = vec![60; 8];
        let err = Parameters::new(lit.clone()).unwrap_err();
        assert!(
            matches!(
                err,
                Error::Insecure {
                    n: 16384,
                    max_log_qp: 438,
                    ..
                }
            ),
            "{err}"
        );
        assert!(err.to_string().contains("438"));
        lit.security = Security::InsecureForTesting;
        assert!(Parameters::new(lit).is_ok());
    }

    #[test]
    fn intent_picks_smallest_secure_degree() {
        let p = Parameters::from_intent(&ParametersIntent::new(6, 40)).unwrap();
        assert_eq!(p.degree(), 1 << 14);
        assert_eq!(p.max_level(), 6);
        assert!(p.log_qp() <= 438.0);
        let p = Parameters::from_intent(&ParametersIntent::new(2, 30)).unwrap();
        assert_eq!(p.degree(), 1 << 13);
        let too_deep = ParametersIntent {
            log_n: Some(13),
            ..ParametersIntent::new(10, 40)
        };
        assert!(matches!(
            Parameters::from_intent(&too_deep),
            Err(Error::Insecure { .. })
        ));
    }

    #[test]
    fn hash_is_stable_and_discriminates() {
        let a = Preset::N14Depth6.parameters().unwrap();
        let b = Preset::N14Depth6.parameters().unwrap();
        assert_eq!(a.hash(), b.hash());
        let c = Preset::N15Depth14.parameters().unwrap();
        assert_ne!(a.hash(), c.hash());
        assert!(a.check_hash(c.hash()).is_err());
    }

    #[test]
    fn reference_backend_gives_identical_results() {
        use crate::math::ntt::ReferenceNtt;
        let lit = ParametersLiteral {
            log_n: 10,
            log_q: vec![50, 40],
            log_p: vec![55],
            alpha: None,
            log_scale: 40.0,
            secret: SecretDistribution::UniformTernary,
            security: Security::InsecureForTesting,
        };
        let fast = Parameters::new(lit.clone()).unwrap();
        let reference = Parameters::new_with_backend(lit, &|n, q| {
            let psi = cpu_plan(n, q)?.psi();
            Ok(Arc::new(ReferenceNtt::new(n, q, Some(psi))?) as NttPlan)
        })
        .unwrap();
        assert_eq!(fast.hash(), reference.hash());
        let mut prng = crate::math::Prng::from_seed([5; 32]);
        let a = fast
            .ring_q()
            .uniform::<crate::ring::Coeff>(&mut prng, 2)
            .unwrap();
        let x = fast.ring_q().to_eval(a.clone()).unwrap();
        let y = reference.ring_q().to_eval(a).unwrap();
        assert_eq!(x, y);
        assert_eq!(reference.ring_q().ntt(0).unwrap().name(), "reference");
    }

    /// Finding 6: the N = 2^16 bound is OpenFHE's 1747 bits; a ~1755-bit set is refused
    /// (it passed under the old 1761-bit bound).
    #[test]
    fn n16_bound_is_1747() {
        assert_eq!(max_log_qp_128(1 << 16), Some(1747));
        assert_eq!(max_log_qp_128(1 << 17), Some(3523));
        let lit = ParametersLiteral {
            log_n: 16,
            log_q: [vec![60; 28], vec![55]].concat(),
            log_p: vec![20],
            alpha: None,
            log_scale: 40.0,
            secret: SecretDistribution::UniformTernary,
            security: Security::Bits128,
        };
        let err = Parameters::new(lit).unwrap_err();
        match err {
            Error::Insecure {
                n: 65536,
                log_qp,
                max_log_qp: 1747,
            } => assert!((1748..=1761).contains(&log_qp), "{log_qp}"),
            e => panic!("{e}"),
        }
    }

    /// Finding 6: `from_primes` (the loading path) runs the literal checks of `new`.
    #[test]
    fn from_primes_checks_like_new() {
        let base = Preset::N14Depth6.parameters().unwrap();
        let (q, p) = (base.q().to_vec(), base.p().to_vec());
        let mut lit = base.literal().clone();
        lit.secret = SecretDistribution::HammingWeight(0);
        lit.security = Security::InsecureForTesting;
        let e = Parameters::from_primes(lit.clone(), q.clone(), p.clone()).unwrap_err();
        assert!(e.to_string().contains("Hamming weight 0"), "{e}");
        lit.secret = SecretDistribution::HammingWeight(MIN_HAMMING_WEIGHT - 1);
        assert!(Parameters::from_primes(lit.clone(), q.clone(), p.clone()).is_err());
        lit.secret = SecretDistribution::HammingWeight((1 << 14) + 1);
        assert!(Parameters::from_primes(lit.clone(), q.clone(), p.clone()).is_err());
        lit.secret = SecretDistribution::HammingWeight(MIN_HAMMING_WEIGHT);
        assert!(Parameters::from_primes(lit.clone(), q.clone(), p.clone()).is_ok());
        lit.secret = SecretDistribution::UniformTernary;
        for bad in [f64::NAN, f64::INFINITY, -1.0, 0.0, 200.0] {
            let mut l = lit.clone();
            l.log_scale = bad;
            let e = Parameters::from_primes(l, q.clone(), p.clone()).unwrap_err();
            assert!(e.to_string().contains("log_scale"), "{bad}: {e}");
        }
        // A scale at or above Q cannot hold a message.
        let mut l = lit.clone();
        l.log_scale = 119.0;
        let e = Parameters::from_primes(l, vec![q[0]], p.clone()).unwrap_err();
        assert!(e.to_string().contains("below log2(Q)"), "{e}");
        // Repeated primes.
        assert!(Parameters::from_primes(lit.clone(), vec![q[0], q[0]], p.clone()).is_err());
    }

    /// Task 2: typed errors, no panics, for empty chains and absurd degrees.
    #[test]
    fn from_primes_refuses_empty_chains_and_huge_degrees() {
        let base = Preset::N14Depth6.parameters().unwrap();
        let mut lit = base.literal().clone();
        lit.security = Security::InsecureForTesting;
        let e = Parameters::from_primes(lit.clone(), vec![], base.p().to_vec()).unwrap_err();
        assert!(matches!(e, Error::InvalidParameters(_)), "{e}");
        let e = Parameters::from_primes(lit.clone(), base.q().to_vec(), vec![]).unwrap_err();
        assert!(matches!(e, Error::InvalidParameters(_)), "{e}");
        for log_n in [0, 3, 18, 63, 64, 65, u32::MAX] {
            let mut l = lit.clone();
            l.log_n = log_n;
            let e = Parameters::from_primes(l, base.q().to_vec(), base.p().to_vec()).unwrap_err();
            assert!(matches!(e, Error::InvalidDegree { .. }), "{log_n}: {e}");
        }
    }

    /// Task 2: an intent whose depth overflows, or an absurd degree, is a typed error.
    #[test]
    fn from_intent_refuses_overflowing_depth() {
        for depth in [usize::MAX, usize::MAX / 2, MAX_CHAIN_PRIMES] {
            let e = Parameters::from_intent(&ParametersIntent::new(depth, 40)).unwrap_err();
            assert!(matches!(e, Error::InvalidParameters(_)), "{e}");
        }
        let e = Parameters::from_intent(&ParametersIntent {
            int_bits: u32::MAX,
            ..ParametersIntent::new(2, 40)
        });
        assert!(e.is_ok() || e.is_err());
        for log_n in [64, u32::MAX] {
            let e = Parameters::from_intent(&ParametersIntent {
                log_n: Some(log_n),
                ..ParametersIntent::new(2, 40)
            })
            .unwrap_err();
            assert!(matches!(e, Error::InvalidDegree { .. }), "{e}");
        }
    }

    /// Finding 6: the default scale is part of the hash.
    #[test]
    fn hash_covers_log_scale() {
        let a = Preset::N14Depth6.parameters().unwrap();
        let mut lit = Preset::N14Depth6.literal();
        lit.log_scale = 41.0;
        let b = Parameters::new(lit).unwrap();
        assert_ne!(a.hash(), b.hash());
    }

    #[test]
    fn bad_literals() {
        let mut lit = Preset::N14Depth6.literal();
        lit.log_n = 3;
        assert!(Parameters::new(lit).is_err());
        let mut lit = Preset::N14Depth6.literal();
        lit.log_p.clear();
        assert!(Parameters::new(lit).is_err());
        let mut lit = Preset::N14Depth6.literal();
        lit.log_q[1] = 70;
        assert!(Parameters::new(lit).is_err());
        let mut lit = Preset::N14Depth6.literal();
        lit.alpha = Some(9);
        assert!(Parameters::new(lit).is_err());
    }
}
