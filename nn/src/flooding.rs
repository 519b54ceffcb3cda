//! Noise flooding of a network's outputs (IND-CPA-D), planned for.
//!
//! Decrypted logits carry the CKKS error, a function of the secret key; shown to the party that
//! ran the network they leak the key (Li–Micciancio 2021). By default [`Plan::decrypt`]
//! therefore decrypts with he-core's noise flooding
//! ([`he_core::ckks::flooding`]): `2^(s/2+1)·√t` times a bound on the error, `s = 30`, `t = 1`.
//!
//! The bound comes from the cleartext simulator's noise model run on the calibration inputs
//! (or on fixed pseudo-random inputs without calibration data), never from the ciphertext being
//! decrypted: the flooding level is a function of the plan alone. The simulator predicts the
//! encrypted error within a factor of two (nn's end-to-end test checks it); the bound takes
//! four times its RMS.
//!
//! Flooding costs about `s/2 + 1 + log2(√N)` + 3 bits of precision (26 bits at `N = 2^14`), so
//! the planner plans for it: at each degree (smallest first) it takes the largest scale that
//! fits, up to 58 bits, and accepts the first degree whose predicted flooding noise per output
//! is at most `2^-flooded_output_bits` ([`PlanOptions::flooded_output_bits`](crate::plan::PlanOptions::flooded_output_bits), default 6; the
//! MNIST model of the tests gets `2^-10.5` at `N = 2^14`, scale `2^51`). Opting out is by name:
//! `PlanOptions::flooding = None` (results that never leave the client), or
//! [`Plan::decrypt_unflooded`].

use crate::error::{NnError, Result};
use crate::plan::Plan;
use crate::sim::Gaussian;
use he_core::ckks::{Ciphertext, Decryptor, Encoder, FloodingConfig, NoiseEstimate};

/// The bound is this many times the simulated RMS error (2 bits).
const MARGIN: f64 = 4.0;
/// Inputs simulated for the prediction.
const PREDICTION_INPUTS: usize = 8;

/// The flooding a plan's outputs get when decrypted.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct OutputFlooding {
    /// Statistical security and number of shared decryptions.
    pub config: FloodingConfig,
    /// RMS of the simulated CKKS error of an output (value units).
    pub simulated_rms: f64,
    /// `log2` of the flooding noise's standard deviation per output (value units): outputs
    /// keep about `-log2_sigma` bits after the binary point.
    pub log2_sigma: f64,
    /// `log2` of the simulated error's RMS: the precision before flooding.
    pub log2_rms_before: f64,
}

impl OutputFlooding {
    /// The noise bound for an output ciphertext at scale `scale`.
    pub fn estimate(&self, scale: f64) -> Result<NoiseEstimate> {
        // ‖e‖₂ = Δ·√2·σ for a per-slot (real part) error σ, over all N/2 slots (Parseval).
        Ok(NoiseEstimate::from_log2_l2_norm(
            (scale * 2f64.sqrt() * self.simulated_rms * MARGIN)
                .max(1.0)
                .log2(),
        )?)
    }

    /// Predicts the flooding of `plan`'s outputs under `config`.
    pub fn predict(plan: &Plan, config: FloodingConfig, calibration: &[Vec<f64>]) -> Result<Self> {
        let len = plan.steps.first().map(|s| s.len).unwrap_or(0);
        let inputs: Vec<Vec<f64>> = if calibration.is_empty() {
            let mut g = Gaussian::new(0x5EED);
            (0..PREDICTION_INPUTS)
                .map(|_| (0..len).map(|_| g.uniform()).collect())
                .collect()
        } else {
            calibration
                .iter()
                .take(PREDICTION_INPUTS)
                .cloned()
                .collect()
        };
        let clean = plan.simulate(&inputs, None)?;
        let noisy = plan.simulate(&inputs, Some(0xF100D))?;
        let (mut sum, mut count) = (0.0f64, 0usize);
        for (a, b) in clean.iter().zip(&noisy) {
            for (x, y) in a.iter().zip(b) {
                sum += (x - y) * (x - y);
                count += 1;
            }
        }
        if count == 0 {
            return Err(NnError::Invalid(
                "noise-flooding prediction: the network has no outputs".into(),
            ));
        }
        let rms = (sum / count as f64).sqrt().max(f64::MIN_POSITIVE);
        let out_level = plan.steps.last().map(|s| s.level).unwrap_or(0);
        let scale = plan
            .scales
            .get(out_level)
            .copied()
            .unwrap_or_else(|| plan.params.default_scale());
        let mut f = Self {
            config,
            simulated_rms: rms,
            log2_sigma: 0.0,
            log2_rms_before: rms.log2(),
        };
        f.log2_sigma = config
            .report(&plan.params, &f.estimate(scale)?, scale)
            .slot_log2_sigma;
        Ok(f)
    }
}

/// Decrypts and decodes one output ciphertext, with `flooding` where given (what
/// [`Plan::decrypt`] does per ciphertext; the CLI calls it with the bound from `keys.json`).
pub fn decrypt_output(
    encoder: &Encoder,
    decryptor: &Decryptor<'_>,
    flooding: Option<&OutputFlooding>,
    c: &Ciphertext,
) -> Result<Vec<f64>> {
    let pt = match flooding {
        Some(f) => {
            decryptor
                .decrypt_flooded(c, &f.estimate(c.scale())?, &f.config)?
                .0
        }
        None => decryptor.decrypt(c)?,
    };
    Ok(encoder.decode(&pt)?)
}
