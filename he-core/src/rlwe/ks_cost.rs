//! A cost and memory model of hybrid key switching, and a chooser of the digit count (`dnum`)
//! and special primes from it.
//!
//! For a ciphertext chain `q_0..q_L` (bit sizes) at degree `N`, every realisable digit count
//! `dnum ∈ 1..=L+1` (`α = ⌈(L+1)/dnum⌉` primes per digit; a `dnum` that no `α` realises, such
//! as 6 of 10 limbs, is skipped) gets:
//!
//! * special primes: `P` must exceed the largest digit product `D_j` (so that ModDown's
//!   division by `P` removes the digits' noise), i.e. `Σ (b_i − 1) ≥ log2 max D_j` for primes
//!   of `b_i` bits (a `b`-bit prime exceeds `2^(b−1)`); `k` primes of at most 61 bits;
//! * security: `log2(QP) ≤` the 128-bit bound for `N` ([`max_log_qp_128`]); a `dnum` whose
//!   `P` breaks it is marked insecure (it needs a larger `N`);
//! * bytes per key: `dnum · 2 · (L + 1 + k) · N · 8` (what [`KeyShape::bytes`](super::KeyShape::bytes)
//!   counts for a full key);
//! * time of one key switch at level `l` (`m = l + 1` limbs, `d_l = ⌈m/α⌉` digits of sizes
//!   `a_j`), as in [`key_switch`](super::keyswitch::key_switch):
//!   - NTT limbs: `m` (INTT of the input) `+ Σ_j (m + k − a_j)` (ModUp of each digit) `+
//!     2·(k + m)` (ModDown of both components: `k` INTT, `m` NTT);
//!   - limb multiply-adds: `Σ_j a_j·(m + k − a_j)` (ModUp's basis conversions) `+ 2·d_l·(m + k)`
//!     (the inner product with both key components) `+ 2·(k·m + m)` (ModDown's conversion and
//!     subtraction-multiplication);
//!   - `time = NTT limbs · N·log2 N · ntt_ns + multiply-adds · N · mac_ns`, with the weights
//!     of [`KsWeights`] (the `ks_cost` example calibrates them from he-core's own limb NTT and
//!     multiply-add, checks the model against real rotations, and fits them; the defaults are
//!     that fit).
//!
//! A computation's cost is the sum over the levels it switches keys at, each at its own limb
//! count ([`KsDemand::switches_per_level`]). [`KsModel::choose`] picks the fastest secure
//! `dnum` whose keys fit a byte budget. Fewer digits mean smaller keys but more special primes
//! (more limbs in every NTT and product), so time has its minimum at a few digits, and the
//! security bound rules out the fewest; a budget moves the choice towards fewer digits, and
//! when even the smallest secure keys are too big, a smaller scale or a larger `N` (more room
//! for `P`) is the way out — [`Parameters::from_intent`](super::Parameters::from_intent)
//! tries the next degree when a budget cannot be met.

use super::params::max_log_qp_128;
use crate::{Error, Result};

/// Largest special prime, in bits.
const MAX_SPECIAL_BITS: u32 = 61;
/// Smallest special prime, in bits (the smallest prime size a chain accepts).
const MIN_SPECIAL_BITS: u32 = 20;

/// How key-switching digits and special primes are chosen by
/// [`Parameters::from_intent`](super::Parameters::from_intent).
#[derive(Debug, Clone, PartialEq, Default)]
pub enum KeySwitching {
    /// The fewest digits that stay secure, special primes of 60 bits (the behaviour before the
    /// cost model; the default).
    #[default]
    Fewest,
    /// Exactly this many digits (`α = ⌈(L+1)/dnum⌉`), special primes of 60 bits.
    Digits(usize),
    /// The cost model's choice for this demand: the fastest secure `dnum` whose keys fit the
    /// budget, special primes just above the largest digit ([`KsModel::choose`]).
    Auto(KsDemand),
}

/// What a computation asks of key switching: keys held, key switches per level, a budget.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct KsDemand {
    /// Key-switching keys held at once (relinearisation and Galois keys), all full keys.
    pub keys: usize,
    /// Key switches at each level (index = level; levels past the end count 0). Empty: one per
    /// level `0..=L` (a computation spread evenly over the chain).
    pub switches_per_level: Vec<u64>,
    /// Most bytes the `keys` keys may take together (`None`: no limit).
    pub budget_bytes: Option<u64>,
}

impl KsDemand {
    /// `keys` keys, one switch per level, and an optional budget.
    pub fn new(keys: usize, budget_bytes: Option<u64>) -> Self {
        Self {
            keys,
            switches_per_level: Vec::new(),
            budget_bytes,
        }
    }
}

/// The weights of the time model, in nanoseconds.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct KsWeights {
    /// One NTT (or inverse NTT) of one limb costs `ntt_ns · N · log2 N`.
    pub ntt_ns: f64,
    /// One limb multiply-add (`N` modular products accumulated) costs `mac_ns · N`.
    pub mac_ns: f64,
}

impl Default for KsWeights {
    /// Fitted (least squares) to 36 single-threaded rotation timings of the `ks_cost` example
    /// (N = 2^15 and 2^16 chains of 21 primes, 1..=21 digits, top and middle levels) on an AVX2
    /// x86-64 core without IFMA, within 0.7..1.25 of every timing. The isolated primitives
    /// measure 0.23..0.37 ns (NTT) and 1.5..1.7 ns (`mul_add_assign`): in key switching a
    /// multiply-add costs about twice the isolated one (basis conversions and the inner
    /// product read digits and keys from memory, not cache).
    fn default() -> Self {
        Self {
            ntt_ns: 0.385,
            mac_ns: 3.1,
        }
    }
}

/// One digit count's special primes, bytes and time.
#[derive(Debug, Clone, PartialEq)]
pub struct KsCandidate {
    /// Digits at the top level.
    pub dnum: usize,
    /// Primes per digit.
    pub alpha: usize,
    /// Bit sizes of the special primes (`k = log_p.len()`).
    pub log_p: Vec<u32>,
    /// `log2(QP)` bits (sum of the prime sizes).
    pub log_qp: u32,
    /// Whether `log_qp` is within the 128-bit bound for `N`.
    pub secure: bool,
    /// Bytes of one full key.
    pub key_bytes: u64,
    /// Modelled nanoseconds of one key switch at the top level.
    pub top_switch_ns: f64,
    /// Modelled nanoseconds of the demand's key switches (0 until [`KsModel::choose`]).
    pub demand_ns: f64,
}

impl KsCandidate {
    /// Number of special primes `k`.
    pub fn k(&self) -> usize {
        self.log_p.len()
    }
}

/// The counts behind one modelled key switch.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct KsCounts {
    /// Limb NTTs (forward and inverse).
    pub ntt_limbs: u64,
    /// Limb multiply-adds.
    pub mac_limbs: u64,
}

/// The chooser's answer: the chosen candidate and every candidate considered.
#[derive(Debug, Clone, PartialEq)]
pub struct KsChoice {
    /// The chosen digit count's candidate.
    pub chosen: KsCandidate,
    /// All realisable digit counts, ascending (insecure and over-budget ones included).
    pub alternatives: Vec<KsCandidate>,
}

/// The model for one chain at one degree.
#[derive(Debug, Clone, PartialEq)]
pub struct KsModel {
    log_n: u32,
    log_q: Vec<u32>,
    weights: KsWeights,
}

impl KsModel {
    /// The model for ciphertext primes of `log_q` bits (`q_0` first) at `N = 2^log_n`, with the
    /// default weights.
    pub fn new(log_n: u32, log_q: &[u32]) -> Result<Self> {
        if !(4..=17).contains(&log_n) {
            return Err(Error::InvalidDegree {
                found: 1usize.checked_shl(log_n).unwrap_or(0),
                min: 16,
                max: 1 << 17,
            });
        }
        if log_q.is_empty() || log_q.iter().any(|b| !(MIN_SPECIAL_BITS..=61).contains(b)) {
            return Err(Error::InvalidParameters(format!(
                "a chain of 1 or more primes of 20..=61 bits is needed, found {log_q:?}"
            )));
        }
        Ok(Self {
            log_n,
            log_q: log_q.to_vec(),
            weights: KsWeights::default(),
        })
    }

    /// The same model with other time weights.
    pub fn with_weights(mut self, weights: KsWeights) -> Self {
        self.weights = weights;
        self
    }

    /// Limbs of the chain (`L + 1`).
    pub fn limbs(&self) -> usize {
        self.log_q.len()
    }

    /// Special primes for `α` primes per digit: `k = ⌈D/60⌉` primes of `⌈D/k⌉ + 1` bits
    /// (at least 20), `D` the bits of the largest digit, so that `Σ (b_i − 1) ≥ D`.
    pub fn special_primes(&self, alpha: usize) -> Vec<u32> {
        let d = self.max_digit_bits(alpha);
        let k = d.div_ceil(MAX_SPECIAL_BITS - 1).max(1);
        let bits = (d.div_ceil(k) + 1).clamp(MIN_SPECIAL_BITS, MAX_SPECIAL_BITS);
        vec![bits; k as usize]
    }

    /// Bits of the largest digit product for `α` primes per digit (consecutive primes, as
    /// [`KeySwitchBasis::digit_range`](crate::ring::KeySwitchBasis::digit_range) groups them).
    pub fn max_digit_bits(&self, alpha: usize) -> u32 {
        self.log_q
            .chunks(alpha.max(1))
            .map(|c| c.iter().sum::<u32>())
            .max()
            .unwrap_or(0)
    }

    /// The counts of one key switch at `level` with `α` primes per digit and `k` special primes.
    pub fn counts(&self, alpha: usize, k: usize, level: usize) -> KsCounts {
        let m = level.min(self.limbs().saturating_sub(1)) as u64 + 1;
        let (a, k) = (alpha.max(1) as u64, k as u64);
        let digits = m.div_ceil(a);
        let mut ntt = m + 2 * (k + m);
        let mut mac = 2 * digits * (m + k) + 2 * (k * m + m);
        for j in 0..digits {
            let aj = a.min(m - j * a);
            ntt += m + k - aj;
            mac += aj * (m + k - aj);
        }
        KsCounts {
            ntt_limbs: ntt,
            mac_limbs: mac,
        }
    }

    /// Modelled nanoseconds of one key switch at `level`.
    pub fn switch_ns(&self, alpha: usize, k: usize, level: usize) -> f64 {
        let c = self.counts(alpha, k, level);
        let n = (1u64 << self.log_n) as f64;
        c.ntt_limbs as f64 * n * self.log_n as f64 * self.weights.ntt_ns
            + c.mac_limbs as f64 * n * self.weights.mac_ns
    }

    /// Bytes of one full key with `dnum` digits and `k` special primes.
    pub fn key_bytes(&self, dnum: usize, k: usize) -> u64 {
        dnum as u64 * 2 * (self.limbs() + k) as u64 * (1u64 << self.log_n) * 8
    }

    /// Every realisable digit count, ascending, with its special primes, security, bytes and
    /// top-level switch time.
    pub fn candidates(&self) -> Vec<KsCandidate> {
        let limbs = self.limbs();
        let bound = max_log_qp_128(1 << self.log_n).unwrap_or(0);
        let q_bits: u32 = self.log_q.iter().sum();
        (1..=limbs)
            .filter_map(|dnum| {
                let alpha = limbs.div_ceil(dnum);
                if limbs.div_ceil(alpha) != dnum {
                    return None;
                }
                let log_p = self.special_primes(alpha);
                let log_qp = q_bits + log_p.iter().sum::<u32>();
                let k = log_p.len();
                Some(KsCandidate {
                    dnum,
                    alpha,
                    secure: log_qp <= bound,
                    log_qp,
                    key_bytes: self.key_bytes(dnum, k),
                    top_switch_ns: self.switch_ns(alpha, k, limbs - 1),
                    demand_ns: 0.0,
                    log_p,
                })
            })
            .collect()
    }

    /// Modelled nanoseconds of the demand's key switches with candidate `c`.
    pub fn demand_ns(&self, c: &KsCandidate, demand: &KsDemand) -> f64 {
        let top = self.limbs() - 1;
        if demand.switches_per_level.is_empty() {
            return (0..=top).map(|l| self.switch_ns(c.alpha, c.k(), l)).sum();
        }
        demand
            .switches_per_level
            .iter()
            .enumerate()
            .take(top + 1)
            .filter(|(_, n)| **n > 0)
            .map(|(l, n)| *n as f64 * self.switch_ns(c.alpha, c.k(), l))
            .sum()
    }

    /// The fastest secure digit count whose `demand.keys` keys fit `demand.budget_bytes`
    /// (ties: fewer bytes), with every candidate for comparison.
    ///
    /// Errors: [`Error::Insecure`] when no digit count is secure at this degree (the least
    /// `log2(QP)` reported), [`Error::KeyBudgetExceeded`] when none fits the budget.
    ///
    /// ```
    /// # fn main() -> he_core::Result<()> {
    /// use he_core::rlwe::ks_cost::{KsDemand, KsModel};
    /// // N = 2^15 (881-bit bound), q_0 of 50 bits and 20 rescaling primes of 30 bits.
    /// let chain: Vec<u32> = std::iter::once(50).chain(std::iter::repeat(30).take(20)).collect();
    /// let model = KsModel::new(15, &chain)?;
    /// // One switch per level, no budget: 5 digits (3 special primes of 58 bits) are the
    /// // fastest; 1..3 digits would need more special-prime bits than the bound leaves.
    /// let free = model.choose(&KsDemand::new(90, None))?;
    /// assert_eq!((free.chosen.dnum, free.chosen.k()), (5, 3));
    /// assert!(free.alternatives.iter().filter(|c| c.dnum < 4).all(|c| !c.secure));
    /// assert_eq!(free.chosen.key_bytes, 5 * 2 * (21 + 3) * (1 << 15) * 8);
    /// // 90 keys in 5 GiB: 5 digits take 5.3 GiB, 4 digits (4 primes of 51 bits) 4.4 GiB and
    /// // are the fastest that fit.
    /// let tight = model.choose(&KsDemand::new(90, Some(5 << 30)))?;
    /// assert_eq!((tight.chosen.dnum, tight.chosen.k()), (4, 4));
    /// assert!(90 * tight.chosen.key_bytes <= 5 << 30);
    /// assert!(tight.chosen.demand_ns >= free.chosen.demand_ns);
    /// // 90 keys never fit 1 GiB here: a typed error (a larger N would hold fewer digits).
    /// assert!(model.choose(&KsDemand::new(90, Some(1 << 30))).is_err());
    /// # Ok(())
    /// # }
    /// ```
    pub fn choose(&self, demand: &KsDemand) -> Result<KsChoice> {
        let mut alternatives = self.candidates();
        for c in &mut alternatives {
            c.demand_ns = self.demand_ns(c, demand);
        }
        let keys = demand.keys.max(1) as u64;
        let fits = |c: &KsCandidate| {
            demand
                .budget_bytes
                .is_none_or(|b| c.key_bytes.saturating_mul(keys) <= b)
        };
        let chosen = alternatives
            .iter()
            .filter(|c| c.secure && fits(c))
            .min_by(|a, b| {
                a.demand_ns
                    .total_cmp(&b.demand_ns)
                    .then(a.key_bytes.cmp(&b.key_bytes))
            })
            .cloned();
        match chosen {
            Some(chosen) => Ok(KsChoice {
                chosen,
                alternatives,
            }),
            None => {
                let secure: Vec<&KsCandidate> = alternatives.iter().filter(|c| c.secure).collect();
                match secure.iter().map(|c| c.key_bytes).min() {
                    Some(smallest) => Err(Error::KeyBudgetExceeded {
                        keys: demand.keys,
                        budget_bytes: demand.budget_bytes.unwrap_or(0),
                        smallest_bytes: smallest.saturating_mul(keys),
                    }),
                    None => Err(Error::Insecure {
                        n: 1 << self.log_n,
                        log_qp: alternatives.iter().map(|c| c.log_qp).min().unwrap_or(0),
                        max_log_qp: max_log_qp_128(1 << self.log_n).unwrap_or(0),
                    }),
                }
            }
        }
    }

    /// The candidate of exactly `dnum` digits (any `1..=L+1`; an unrealisable `dnum` gets the
    /// digits its `α` gives), or [`Error::OutOfRange`].
    pub fn candidate(&self, dnum: usize) -> Result<KsCandidate> {
        let limbs = self.limbs();
        if dnum == 0 || dnum > limbs {
            return Err(Error::OutOfRange {
                what: "key-switching digits (dnum)",
                found: dnum.to_string(),
                allowed: format!("1..={limbs} (the chain's limbs)"),
            });
        }
        let alpha = limbs.div_ceil(dnum);
        let real = limbs.div_ceil(alpha);
        self.candidates()
            .into_iter()
            .find(|c| c.dnum == real)
            .ok_or(Error::OutOfRange {
                what: "key-switching digits (dnum)",
                found: dnum.to_string(),
                allowed: format!("1..={limbs}"),
            })
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::panic, clippy::indexing_slicing)]
mod tests {
    use super::*;
    use crate::rlwe::{
        KeyGenerator, Parameters, ParametersIntent, ParametersLiteral, SecretDistribution,
        SecretKey, Security,
    };
    use proptest::prelude::*;

    fn chain(q0: u32, sb: u32, depth: usize) -> Vec<u32> {
        std::iter::once(q0)
            .chain(std::iter::repeat_n(sb, depth))
            .collect()
    }

    /// The model's bytes per key are those of a generated key, for several digit counts.
    #[test]
    fn model_bytes_equal_generated_key_bytes() {
        let log_q = chain(50, 30, 7);
        let model = KsModel::new(10, &log_q).unwrap();
        for dnum in [1, 2, 3, 4, 8] {
            let c = model.candidate(dnum).unwrap();
            let params = Parameters::new(ParametersLiteral {
                log_n: 10,
                log_q: log_q.clone(),
                log_p: c.log_p.clone(),
                alpha: Some(c.alpha),
                log_scale: 30.0,
                secret: SecretDistribution::UniformTernary,
                security: Security::InsecureForTesting,
            })
            .unwrap();
            assert_eq!(params.dnum(), c.dnum);
            let sk = SecretKey::generate(&params).unwrap();
            let key = KeyGenerator::new(&sk).relinearization_key().unwrap();
            assert_eq!(key.words().len() as u64 * 8, c.key_bytes, "dnum {dnum}");
            assert_eq!(key.shape().bytes() as u64, c.key_bytes, "dnum {dnum}");
        }
    }

    #[test]
    fn out_of_range_and_budget_errors_are_typed() {
        let model = KsModel::new(15, &chain(50, 30, 20)).unwrap();
        for d in [0, 22, usize::MAX] {
            assert!(matches!(model.candidate(d), Err(Error::OutOfRange { .. })));
        }
        let e = model.choose(&KsDemand::new(90, Some(1000))).unwrap_err();
        assert!(
            matches!(e, Error::KeyBudgetExceeded { keys: 90, .. }),
            "{e}"
        );
        // A chain no digit count makes secure at N = 2^12.
        let e = KsModel::new(12, &chain(60, 40, 20))
            .unwrap()
            .choose(&KsDemand::new(1, None))
            .unwrap_err();
        assert!(matches!(e, Error::Insecure { n: 4096, .. }), "{e}");
        assert!(KsModel::new(3, &[40]).is_err());
        assert!(KsModel::new(12, &[]).is_err());
    }

    /// The intent's `Auto` gives the model's choice; `Digits` and `dnum` behave as before.
    #[test]
    fn intent_auto_follows_the_model() {
        let demand = KsDemand::new(90, Some(5 << 30));
        let intent = ParametersIntent {
            log_n: Some(15),
            key_switching: KeySwitching::Auto(demand.clone()),
            ..ParametersIntent::new(20, 30)
        };
        let p = Parameters::from_intent(&intent).unwrap();
        let choice = KsModel::new(15, &p.literal().log_q)
            .unwrap()
            .choose(&demand)
            .unwrap();
        assert_eq!(p.dnum(), choice.chosen.dnum);
        assert_eq!(p.literal().log_p, choice.chosen.log_p);
        let bytes = KsModel::new(15, &p.literal().log_q)
            .unwrap()
            .key_bytes(p.dnum(), p.p().len());
        assert!(90 * bytes <= 5 << 30);
        // The budget rules out 5 digits (the fastest); tight special primes leave room for 4,
        // fewer than the fewest with 60-bit ones.
        let fewest = Parameters::from_intent(&ParametersIntent {
            log_n: Some(15),
            ..ParametersIntent::new(20, 30)
        })
        .unwrap();
        assert_eq!((p.dnum(), fewest.dnum()), (4, 5));
        // Below the keys' bytes at N = 2^15 the smallest secure degree moves up: N = 2^16
        // holds one digit, whose 90 keys are smaller.
        let wide = Parameters::from_intent(&ParametersIntent {
            key_switching: KeySwitching::Auto(KsDemand::new(90, Some(4 << 30))),
            ..ParametersIntent::new(20, 30)
        })
        .unwrap();
        assert_eq!((wide.degree(), wide.dnum()), (1 << 16, 1));
        let old = ParametersIntent {
            log_n: Some(15),
            dnum: Some(7),
            ..ParametersIntent::new(20, 30)
        };
        let new = ParametersIntent {
            log_n: Some(15),
            key_switching: KeySwitching::Digits(7),
            ..ParametersIntent::new(20, 30)
        };
        let (a, b) = (
            Parameters::from_intent(&old).unwrap(),
            Parameters::from_intent(&new).unwrap(),
        );
        assert_eq!(a.hash(), b.hash());
        assert_eq!(a.dnum(), 7);
        let e = Parameters::from_intent(&ParametersIntent {
            key_switching: KeySwitching::Auto(KsDemand::new(90, Some(1 << 10))),
            log_n: Some(15),
            ..ParametersIntent::new(20, 30)
        })
        .unwrap_err();
        assert!(matches!(e, Error::KeyBudgetExceeded { .. }), "{e}");
        let e = Parameters::from_intent(&ParametersIntent {
            key_switching: KeySwitching::Digits(30),
            log_n: Some(15),
            ..ParametersIntent::new(20, 30)
        })
        .unwrap_err();
        assert!(matches!(e, Error::InvalidParameters(_)), "{e}");
    }

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(64))]

        /// Over random chains: P exceeds every digit; bytes grow and special primes shrink
        /// with the digit count; a secure candidate stays secure with more digits; the chosen
        /// candidate is secure, within budget and no slower than any other such.
        #[test]
        fn model_properties(
            log_n in 12u32..=17,
            q0 in 30u32..=61,
            sb in 20u32..=60,
            depth in 0usize..40,
            keys in 1usize..100,
            budget_mib in 1u64..4000,
        ) {
            let log_q = chain(q0, sb, depth);
            let model = KsModel::new(log_n, &log_q).unwrap();
            let cands = model.candidates();
            prop_assert_eq!(cands.first().map(|c| c.dnum), Some(1));
            prop_assert_eq!(cands.last().map(|c| c.dnum), Some(depth + 1));
            for c in &cands {
                let p_floor: u32 = c.log_p.iter().map(|b| b - 1).sum();
                prop_assert!(p_floor >= model.max_digit_bits(c.alpha));
                prop_assert!(c.log_p.iter().all(|b| (20..=61).contains(b)));
            }
            for w in cands.windows(2) {
                prop_assert!(w[0].dnum < w[1].dnum);
                prop_assert!(w[0].alpha > w[1].alpha);
                prop_assert!(w[0].log_qp >= w[1].log_qp);
                prop_assert!(!w[0].secure || w[1].secure);
                prop_assert!(w[0].key_bytes <= w[1].key_bytes);
            }
            // A switch at a lower level costs no more.
            let top = log_q.len() - 1;
            for c in &cands {
                for l in 0..top {
                    prop_assert!(model.switch_ns(c.alpha, c.k(), l) <= model.switch_ns(c.alpha, c.k(), l + 1));
                }
            }
            let demand = KsDemand::new(keys, Some(budget_mib << 20));
            match model.choose(&demand) {
                Ok(choice) => {
                    let c = &choice.chosen;
                    prop_assert!(c.secure);
                    prop_assert!(c.key_bytes * keys as u64 <= budget_mib << 20);
                    for o in choice.alternatives.iter().filter(|o| o.secure && o.key_bytes * keys as u64 <= budget_mib << 20) {
                        prop_assert!(c.demand_ns <= o.demand_ns);
                    }
                }
                Err(Error::KeyBudgetExceeded { smallest_bytes, .. }) => {
                    prop_assert!(smallest_bytes > budget_mib << 20);
                }
                Err(Error::Insecure { .. }) => prop_assert!(cands.iter().all(|c| !c.secure)),
                Err(e) => prop_assert!(false, "{}", e),
            }
        }
    }
}
