//! Bootstrapping parameters: the layout of the prime chain (which levels each step consumes)
//! and EvalMod's choices, with presets.

use super::evalmod::{ArcSine, EvalModConfig};
use crate::rlwe::{Parameters, ParametersLiteral, SecretDistribution, Security};
use crate::{Error, Result};

/// The chain of a bootstrappable parameter set, bottom to top:
/// `q_0 | residual (levels after bootstrapping) | SlotToCoeff | EvalMod | CoeffToSlot`, and the
/// special primes; plus EvalMod's configuration and the encapsulation weight.
#[derive(Debug, Clone, PartialEq)]
pub struct BootstrapConfig {
    /// `log2 N`.
    pub log_n: u32,
    /// `log2` of the slots bootstrapped: `log_n − 1` for full packing; fewer for sparse
    /// packing, where a ciphertext holds `n = 2^log_slots` values repeated `N/(2n)` times (its
    /// plaintext lies in `Z[X^(N/2n)]`), and bootstrapping needs shorter DFTs and, for
    /// `n ≤ N/4`, a single EvalMod (real and imaginary parts side by side in `2n` slots).
    pub log_slots: u32,
    /// Bits of the base prime `q_0` (the modulus EvalMod reduces by).
    pub q0_bits: u32,
    /// Bits of the primes left for computation after bootstrapping (one per level).
    pub residual_bits: Vec<u32>,
    /// `log2` of the default scale (the scale of a bootstrapped ciphertext).
    pub log_scale: f64,
    /// Bits of the SlotToCoeff primes, one per factor of the DFT.
    pub slots_to_coeff: Vec<u32>,
    /// `log2` of the scale EvalMod hands to SlotToCoeff, whose factors walk it down to the
    /// default scale. Higher lowers the weight of EvalMod's noise; lower leaves the factors'
    /// plaintexts a larger scale (`q_l·(Δ/S)^(1/factors)`), hence more precise diagonals.
    pub slots_to_coeff_input_bits: u32,
    /// Bits of each EvalMod prime (there are [`EvalModConfig::depth`] of them); also `log2` of
    /// EvalMod's working scale.
    pub eval_mod_bits: u32,
    /// Bits of the CoeffToSlot primes, one per factor of the DFT.
    pub coeff_to_slot: Vec<u32>,
    /// Bits of the special primes.
    pub log_p: Vec<u32>,
    /// Primes per key-switching digit (`None`: the largest that `P` covers).
    pub alpha: Option<usize>,
    /// EvalMod.
    pub eval_mod: EvalModConfig,
    /// Hamming weight of the ephemeral sparse secret (sparse-secret encapsulation), or `None`
    /// to bootstrap under the main secret directly (then `K` must bound its `I`).
    pub sparse_secret: Option<usize>,
    /// Security requirement of the whole chain.
    pub security: Security,
}

/// Named bootstrapping parameter sets.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum BootstrapPreset {
    /// `N = 2^16`, full slots (2^15), uniform ternary secret, 128-bit by the table HomE uses
    /// (OpenFHE's for ternary secrets): `log2(QP) = 1746 ≤ 1747`.
    ///
    /// - `q_0`: 60 bits; 9 levels of 40 bits left after bootstrapping (default scale `2^40`);
    /// - SlotToCoeff: 3 factors of 5 merged butterfly stages, 40-bit primes, walking the scale
    ///   from `2^61` down to `2^40`;
    /// - EvalMod: 11 levels of 60 bits (Chebyshev degree 31 = depth 5, 4 double-angle steps,
    ///   the degree-3 arcsine correction), `K = 16`, message ratio `2^7`;
    /// - CoeffToSlot: 3 factors, 60-bit primes (its output scale `2^60`: CoeffToSlot's rescale
    ///   noise, amplified by `R·K` in EvalMod, is the largest term at `N = 2^16`);
    /// - `P`: 6 primes of 61 bits, `α = 6` (5 key-switching digits);
    /// - sparse-secret encapsulation with `h = 32` (the dense-to-sparse key lives mod `q_0·p_0`).
    ///
    /// Measured (BENCHMARKS.md, AVX2 machine): 24.7 bits mean / 22.3 min (Lattigo's statistics,
    /// inputs uniform in [-1, 1]); keys 7.9 GiB (46 rotations, conjugation, relinearization,
    /// sparse-to-dense), 3.9 GiB of DFT plaintexts. With 61-bit EvalMod primes (log2(QP) = 1760,
    /// above the 1747-bit bound HomE now uses) it gave 25.5 / 23.0 in 23.4 s on one thread.
    N16Levels9,
    /// As [`N16Levels9`](Self::N16Levels9) without the arcsine correction: 2 levels fewer in
    /// EvalMod, so `P` has room for `α = 7` (4 digits; `log2(QP) = 1699`), message ratio `2^8`
    /// (the default in Lattigo and OpenFHE, which apply no arcsine either).
    /// Faster, and as precise on data whose coefficients are small (random slots); a large
    /// constant component loses precision as `(2π·c/R)²/6` (about 16 bits for `c = 0.5`).
    ///
    /// Measured (BENCHMARKS.md, AVX2 machine): 24.7 bits mean / 22.2 min; keys 6.1 GiB; 18.2 s
    /// on one thread, 8.7 s on two (0.46× and 0.43× of OpenFHE 1.6.1 in the same run).
    N16Levels9NoArcSine,
    /// The same layout at `N = 2^12` with 2 levels after bootstrapping, 2-factor DFTs and the
    /// arcsine correction (2 more EvalMod levels): **not secure** (the chain is far too long for `N = 2^12`); for tests and tutorials only.
    N12InsecureForTesting,
}

impl BootstrapConfig {
    /// A preset.
    pub fn preset(p: BootstrapPreset) -> Self {
        let eval_mod = EvalModConfig {
            k_bound: 16.0,
            double_angle: 4,
            degree: 31,
            log_message_ratio: 8.0,
            arcsine: ArcSine::None,
        };
        match p {
            BootstrapPreset::N16Levels9 => Self {
                // 60-bit EvalMod and CoeffToSlot primes (61 in the preset without arcsine):
                // log2(QP) = 1746 fits the 1747-bit bound.
                eval_mod_bits: 60,
                coeff_to_slot: vec![60; 3],
                log_p: vec![61; 6],
                alpha: Some(6),
                eval_mod: EvalModConfig {
                    arcsine: ArcSine::Degree3,
                    log_message_ratio: 7.0,
                    ..eval_mod
                },
                ..Self::preset(BootstrapPreset::N16Levels9NoArcSine)
            },
            BootstrapPreset::N16Levels9NoArcSine => Self {
                log_n: 16,
                log_slots: 15,
                q0_bits: 60,
                residual_bits: vec![40; 9],
                log_scale: 40.0,
                slots_to_coeff: vec![40; 3],
                slots_to_coeff_input_bits: 61,
                eval_mod_bits: 61,
                coeff_to_slot: vec![61; 3],
                log_p: vec![61; 7],
                alpha: Some(7),
                eval_mod,
                sparse_secret: Some(32),
                security: Security::Bits128,
            },
            BootstrapPreset::N12InsecureForTesting => Self {
                eval_mod: EvalModConfig {
                    arcsine: ArcSine::Degree3,
                    ..eval_mod
                },
                log_n: 12,
                log_slots: 11,
                q0_bits: 60,
                residual_bits: vec![40; 2],
                log_scale: 40.0,
                slots_to_coeff: vec![40; 2],
                slots_to_coeff_input_bits: 61,
                eval_mod_bits: 61,
                coeff_to_slot: vec![61; 2],
                log_p: vec![61; 4],
                alpha: Some(4),
                sparse_secret: Some(32),
                security: Security::InsecureForTesting,
            },
        }
    }

    /// Levels left for computation after bootstrapping.
    pub fn levels_after(&self) -> usize {
        self.residual_bits.len()
    }

    /// Levels bootstrapping consumes (`SlotToCoeff + EvalMod + CoeffToSlot`).
    pub fn depth(&self) -> usize {
        self.slots_to_coeff.len() + self.eval_mod.depth() + self.coeff_to_slot.len()
    }

    /// The parameters literal of this chain (uniform ternary main secret).
    pub fn literal(&self) -> ParametersLiteral {
        let mut log_q = vec![self.q0_bits];
        log_q.extend(&self.residual_bits);
        log_q.extend(&self.slots_to_coeff);
        log_q.extend(std::iter::repeat_n(
            self.eval_mod_bits,
            self.eval_mod.depth(),
        ));
        log_q.extend(&self.coeff_to_slot);
        ParametersLiteral {
            log_n: self.log_n,
            log_q,
            log_p: self.log_p.clone(),
            alpha: self.alpha,
            log_scale: self.log_scale,
            secret: SecretDistribution::UniformTernary,
            security: self.security,
        }
    }

    /// The validated parameters of this chain.
    pub fn parameters(&self) -> Result<std::sync::Arc<Parameters>> {
        Parameters::new(self.literal())
    }

    /// Checks that `params` has this chain's shape (levels and degree), with typed errors.
    pub fn check(&self, params: &Parameters) -> Result<()> {
        if params.degree() != 1usize << self.log_n {
            return Err(Error::OutOfRange {
                what: "ring degree of bootstrapping parameters",
                found: params.degree().to_string(),
                allowed: format!("{} (2^{})", 1usize << self.log_n, self.log_n),
            });
        }
        let needed = self.levels_after() + self.depth();
        if params.max_level() != needed {
            return Err(Error::OutOfLevels {
                operation: "bootstrapping (levels after + SlotToCoeff + EvalMod + CoeffToSlot)",
                needed,
                found: params.max_level(),
            });
        }
        if self.log_slots == 0 || self.log_slots >= self.log_n {
            return Err(Error::OutOfRange {
                what: "log2 of the bootstrapped slots",
                found: self.log_slots.to_string(),
                allowed: format!("1..={}", self.log_n - 1),
            });
        }
        let log_slots = self.log_slots as usize;
        for (what, f) in [
            ("CoeffToSlot", self.coeff_to_slot.len()),
            ("SlotToCoeff", self.slots_to_coeff.len()),
        ] {
            if f == 0 || f > log_slots {
                return Err(Error::OutOfRange {
                    what: "factors of a homomorphic DFT",
                    found: format!("{what}: {f}"),
                    allowed: format!("1..={log_slots}"),
                });
            }
        }
        if params.p().is_empty() {
            return Err(Error::InvalidParameters(
                "bootstrapping needs special primes".into(),
            ));
        }
        Ok(())
    }
}
