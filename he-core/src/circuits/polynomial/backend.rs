//! The arithmetic polynomial evaluation needs, as a trait: implemented on ciphertexts by the
//! CKKS [`Evaluator`], and on cleartext `f64` vectors (with tracked level and scale, and an
//! optional noise hook) by [`CleartextBackend`]. Both run the identical evaluation code, so
//! the simulator reproduces every level, scale and constant rounding of the encrypted run.

use crate::ckks::evaluator::SCALE_TOLERANCE;
use crate::ckks::{Ciphertext, Evaluator};
use crate::{Error, Result};

/// Level- and scale-tracked arithmetic, the operations of the CKKS evaluator that polynomial
/// evaluation uses. Every operation follows the CKKS rules: additions need equal levels and
/// scales, products multiply scales, rescaling divides by the prime of the level.
pub trait PolynomialBackend {
    /// A ciphertext, or its cleartext model.
    type Value: Clone;
    /// Level of a value.
    fn level(&self, v: &Self::Value) -> usize;
    /// Scale of a value.
    fn scale(&self, v: &Self::Value) -> f64;
    /// The prime `q_level` that a rescale at `level` removes, as `f64`.
    fn prime(&self, level: usize) -> Result<f64>;
    /// `a·b`, relinearized, not rescaled (equal levels).
    fn mul_relin(&self, a: &Self::Value, b: &Self::Value) -> Result<Self::Value>;
    /// `a ·= k` (exact; scale unchanged).
    fn mul_int_assign(&self, a: &mut Self::Value, k: i64) -> Result<()>;
    /// `a ·= round(c·const_scale)`, scale `·= const_scale`.
    fn mul_const_scaled_assign(&self, a: &mut Self::Value, c: f64, const_scale: f64) -> Result<()>;
    /// `a += b` (equal levels and scales).
    fn add_assign(&self, a: &mut Self::Value, b: &Self::Value) -> Result<()>;
    /// `a += c` (`round(c·Δ)` added).
    fn add_const_assign(&self, a: &mut Self::Value, c: f64) -> Result<()>;
    /// Divides by `q_l`: level `l → l − 1`, scale `/ q_l`.
    fn rescale_assign(&self, a: &mut Self::Value) -> Result<()>;
    /// Drops limbs down to `level` (scale unchanged).
    fn drop_to_level(&self, a: &mut Self::Value, level: usize) -> Result<()>;
}

impl PolynomialBackend for Evaluator {
    type Value = Ciphertext;
    fn level(&self, v: &Ciphertext) -> usize {
        v.level()
    }
    fn scale(&self, v: &Ciphertext) -> f64 {
        v.scale()
    }
    fn prime(&self, level: usize) -> Result<f64> {
        self.params()
            .q()
            .get(level)
            .map(|q| *q as f64)
            .ok_or(Error::OutOfLevels {
                operation: "prime of level",
                needed: level,
                found: self.params().max_level(),
            })
    }
    fn mul_relin(&self, a: &Ciphertext, b: &Ciphertext) -> Result<Ciphertext> {
        if std::ptr::eq(a, b) {
            self.square_relin(a)
        } else {
            Evaluator::mul_relin(self, a, b)
        }
    }
    fn mul_int_assign(&self, a: &mut Ciphertext, k: i64) -> Result<()> {
        Evaluator::mul_int_assign(self, a, k)
    }
    fn mul_const_scaled_assign(&self, a: &mut Ciphertext, c: f64, s: f64) -> Result<()> {
        Evaluator::mul_const_scaled_assign(self, a, c, s)
    }
    fn add_assign(&self, a: &mut Ciphertext, b: &Ciphertext) -> Result<()> {
        Evaluator::add_assign(self, a, b)
    }
    fn add_const_assign(&self, a: &mut Ciphertext, c: f64) -> Result<()> {
        Evaluator::add_const_assign(self, a, c)
    }
    fn rescale_assign(&self, a: &mut Ciphertext) -> Result<()> {
        Evaluator::rescale_assign(self, a)
    }
    fn drop_to_level(&self, a: &mut Ciphertext, level: usize) -> Result<()> {
        Evaluator::drop_to_level(self, a, level)
    }
}

/// A cleartext model of a ciphertext: slot values with the level and scale the ciphertext
/// would carry.
#[derive(Debug, Clone, PartialEq)]
pub struct SimulatedValue {
    /// Slot values.
    pub values: Vec<f64>,
    /// Level.
    pub level: usize,
    /// Scale.
    pub scale: f64,
}

/// A hook adding simulated rescaling noise to the slot values of a simulated value.
pub type RescaleNoise<'a> = &'a dyn Fn(&mut [f64]);

/// The cleartext backend: `f64` arithmetic with the same level and scale rules (and checks)
/// as the CKKS evaluator, constants rounded exactly as they are encoded (`round(c·K)/K`), and
/// optional noise injected at every rescale.
#[derive(Clone)]
pub struct CleartextBackend<'a> {
    primes: Vec<f64>,
    noise: Option<RescaleNoise<'a>>,
}

impl std::fmt::Debug for CleartextBackend<'_> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "CleartextBackend({} primes, noise: {})",
            self.primes.len(),
            self.noise.is_some()
        )
    }
}

impl<'a> CleartextBackend<'a> {
    /// A backend for the prime chain `q` (e.g. `params.q()`), without noise.
    pub fn new(q: &[u64]) -> Self {
        Self {
            primes: q.iter().map(|p| *p as f64).collect(),
            noise: None,
        }
    }

    /// The same backend, calling `noise` on the values after every rescale.
    pub fn with_rescale_noise(mut self, noise: RescaleNoise<'a>) -> Self {
        self.noise = Some(noise);
        self
    }

    /// A simulated fresh ciphertext.
    pub fn value(&self, values: Vec<f64>, level: usize, scale: f64) -> Result<SimulatedValue> {
        if level >= self.primes.len() {
            return Err(Error::OutOfRange {
                what: "simulated level",
                found: level.to_string(),
                allowed: format!("< {}", self.primes.len()),
            });
        }
        Ok(SimulatedValue {
            values,
            level,
            scale,
        })
    }

    fn check_pair(a: &SimulatedValue, b: &SimulatedValue) -> Result<()> {
        if a.level != b.level {
            return Err(Error::LevelMismatch {
                left_what: "simulated value",
                left: a.level,
                right_what: "other simulated value",
                right: b.level,
            });
        }
        if a.values.len() != b.values.len() {
            return Err(Error::LengthMismatch {
                what: "simulated slots",
                expected: a.values.len(),
                found: b.values.len(),
            });
        }
        Ok(())
    }
}

impl PolynomialBackend for CleartextBackend<'_> {
    type Value = SimulatedValue;
    fn level(&self, v: &SimulatedValue) -> usize {
        v.level
    }
    fn scale(&self, v: &SimulatedValue) -> f64 {
        v.scale
    }
    fn prime(&self, level: usize) -> Result<f64> {
        self.primes.get(level).copied().ok_or(Error::OutOfLevels {
            operation: "prime of level",
            needed: level,
            found: self.primes.len().saturating_sub(1),
        })
    }
    fn mul_relin(&self, a: &SimulatedValue, b: &SimulatedValue) -> Result<SimulatedValue> {
        Self::check_pair(a, b)?;
        Ok(SimulatedValue {
            values: a.values.iter().zip(&b.values).map(|(x, y)| x * y).collect(),
            level: a.level,
            scale: a.scale * b.scale,
        })
    }
    fn mul_int_assign(&self, a: &mut SimulatedValue, k: i64) -> Result<()> {
        a.values.iter_mut().for_each(|v| *v *= k as f64);
        Ok(())
    }
    fn mul_const_scaled_assign(&self, a: &mut SimulatedValue, c: f64, s: f64) -> Result<()> {
        if !s.is_finite() || !(1.0..crate::ckks::MAX_CONSTANT).contains(&s) {
            return Err(Error::OutOfRange {
                what: "constant scale",
                found: format!("{s:e}"),
                allowed: "finite, in [1, 2^126)".into(),
            });
        }
        let k = (c * s).round() / s;
        a.values.iter_mut().for_each(|v| *v *= k);
        a.scale *= s;
        Ok(())
    }
    fn add_assign(&self, a: &mut SimulatedValue, b: &SimulatedValue) -> Result<()> {
        Self::check_pair(a, b)?;
        if ((a.scale - b.scale) / a.scale).abs() > SCALE_TOLERANCE {
            return Err(Error::ScaleMismatch {
                left_what: "simulated value",
                left_log2: a.scale.log2(),
                right_what: "other simulated value",
                right_log2: b.scale.log2(),
            });
        }
        a.values
            .iter_mut()
            .zip(&b.values)
            .for_each(|(x, y)| *x += y);
        Ok(())
    }
    fn add_const_assign(&self, a: &mut SimulatedValue, c: f64) -> Result<()> {
        let k = (c * a.scale).round() / a.scale;
        a.values.iter_mut().for_each(|v| *v += k);
        Ok(())
    }
    fn rescale_assign(&self, a: &mut SimulatedValue) -> Result<()> {
        if a.level == 0 {
            return Err(Error::OutOfLevels {
                operation: "rescale",
                needed: 1,
                found: 0,
            });
        }
        a.scale /= self.prime(a.level)?;
        a.level -= 1;
        if let Some(f) = self.noise {
            f(&mut a.values);
        }
        Ok(())
    }
    fn drop_to_level(&self, a: &mut SimulatedValue, level: usize) -> Result<()> {
        if level > a.level {
            return Err(Error::OutOfLevels {
                operation: "drop_to_level",
                needed: level,
                found: a.level,
            });
        }
        a.level = level;
        Ok(())
    }
}
