//! Constants and scale management as evaluator operations.
//!
//! CKKS scales are tracked exactly (as `f64`) and every operation here states what it does to
//! the scale and the level:
//!
//! | operation | data | scale | level |
//! |---|---|---|---|
//! | [`mul_const_scaled_assign`](Evaluator::mul_const_scaled_assign)`(c, K)` | `·round(c·K)` | `·K` | = |
//! | [`mul_const_to_scale_assign`](Evaluator::mul_const_to_scale_assign)`(c, Δ')` | `·round(c·Δ'q_l/Δ)` | `Δ'·q_l` (→ `Δ'` after rescale) | = |
//! | [`mul_complex_const_scaled_assign`](Evaluator::mul_complex_const_scaled_assign)`(c, K)` | `·(round(Re c·K) + round(Im c·K)·X^{N/2})` | `·K` | = |
//! | [`add_complex_const_assign`](Evaluator::add_complex_const_assign)`(c)` | `+ round(Re c·Δ) + round(Im c·Δ)·X^{N/2}` | = | = |
//! | [`mul_by_i_assign`](Evaluator::mul_by_i_assign) | `·X^{N/2}` (exact) | = | = |
//! | [`scale_up_assign`](Evaluator::scale_up_assign)`(k)` | `·k` (exact) | `·k` | = |
//! | [`set_scale`](Evaluator::set_scale)`(Δ')` | = | `Δ'` (the value is reinterpreted) | = |
//!
//! Constants are reduced into the RNS limbs from an `i128`, so `|c·K|` may reach `2^126`
//! (a constant larger than one prime spans several limbs exactly).
//!
//! Why `X^{N/2}` is the imaginary unit: slot `j` is the evaluation at `ζ^{5^j}` with `ζ` a
//! primitive `2N`-th root of unity, and `(ζ^{5^j})^{N/2} = (ζ^{N/2})^{5^j} = i^{5^j} = i`
//! because `5^j ≡ 1 (mod 4)`.

use super::ciphertext::Ciphertext;
use super::evaluator::Evaluator;
use crate::ring::{Eval, Poly};
use crate::{Error, Result};
use num_complex::Complex64;

/// Largest allowed magnitude of an encoded constant `c·K` (the `i128` RNS reduction bound).
pub const MAX_CONSTANT: f64 = 85_070_591_730_234_615_865_843_651_857_942_052_864.0; // 2^126

fn check_scale(what: &'static str, s: f64) -> Result<()> {
    if !s.is_finite() || s <= 0.0 {
        return Err(Error::OutOfRange {
            what,
            found: s.to_string(),
            allowed: "finite and > 0".into(),
        });
    }
    Ok(())
}

fn check_const_scale(s: f64) -> Result<()> {
    if !s.is_finite() || !(1.0..MAX_CONSTANT).contains(&s) {
        return Err(Error::OutOfRange {
            what: "constant scale",
            found: format!("{s:e}"),
            allowed: "finite, in [1, 2^126)".into(),
        });
    }
    Ok(())
}

fn round_i128(x: f64, what: &'static str) -> Result<i128> {
    if !x.is_finite() || x.abs() >= MAX_CONSTANT {
        return Err(Error::OutOfRange {
            what,
            found: format!("{x:e}"),
            allowed: "finite, |x| < 2^126".into(),
        });
    }
    Ok(x.round() as i128)
}

impl Evaluator {
    /// The evaluation form of `re + im·X^{N/2}` at `level` (exact integers up to `2^126`).
    fn half_monomial_poly(&self, re: i128, im: i128, level: usize) -> Result<Poly<Eval>> {
        let rq = self.params().ring_q();
        let n = self.params().degree();
        let mut coeffs = vec![0i128; n];
        coeffs[0] = re;
        coeffs[n / 2] = im;
        rq.to_eval(rq.from_i128(&coeffs, level + 1)?)
    }

    /// Multiplies every slot by the real constant `c`, encoded as the integer
    /// `round(c·const_scale)`; the scale is multiplied by `const_scale`, the level is kept.
    ///
    /// `const_scale` must lie in `[1, 2^126)` and `|c·const_scale| < 2^126`
    /// ([`Error::OutOfRange`] otherwise). The encoding error of the constant is at most
    /// `0.5/const_scale` in absolute value.
    pub fn mul_const_scaled_assign(
        &self,
        a: &mut Ciphertext,
        c: f64,
        const_scale: f64,
    ) -> Result<()> {
        self.check_ct(a)?;
        check_const_scale(const_scale)?;
        self.check_scale_fits(
            a.scale() * const_scale,
            a.level(),
            "constant multiplication",
        )?;
        let s = self.rns_of(c * const_scale, a.level() + 1)?;
        let rq = self.params().ring_q();
        for p in &mut a.c {
            rq.mul_rns_scalar_assign(p, &s)?;
        }
        a.scale *= const_scale;
        a.seed = None;
        Ok(())
    }

    /// `a · c` encoded at `const_scale` (see
    /// [`mul_const_scaled_assign`](Self::mul_const_scaled_assign)).
    pub fn mul_const_scaled(&self, a: &Ciphertext, c: f64, const_scale: f64) -> Result<Ciphertext> {
        let mut r = a.clone();
        self.mul_const_scaled_assign(&mut r, c, const_scale)?;
        Ok(r)
    }

    /// The constant scale `target_scale·q_l/Δ` that
    /// [`mul_const_to_scale_assign`](Self::mul_const_to_scale_assign) uses for a ciphertext at
    /// `level` with scale `scale`.
    pub fn const_scale_for_target(&self, level: usize, scale: f64, target_scale: f64) -> f64 {
        let ql = self.params().q().get(level).copied().unwrap_or(0) as f64;
        target_scale * ql / scale
    }

    /// Multiplies by the real constant `c` so that after the **next rescale** the scale is
    /// exactly `target_scale`: the constant is encoded at `K = target_scale·q_l/Δ` (`q_l` the
    /// prime that rescale removes, `Δ` the current scale), and the scale becomes
    /// `target_scale·q_l`. This is the building block of exact scale management: operands that
    /// took different paths meet on one scale without any reinterpretation.
    ///
    /// Errors: [`Error::OutOfLevels`] at level 0 (no rescale can follow),
    /// [`Error::OutOfRange`] when `K < 1` (the target is too small for this level) or
    /// `|c·K| ≥ 2^126`.
    ///
    /// ```
    /// # use he_core::rlwe::*;
    /// # use he_core::ckks::*;
    /// # use std::sync::Arc;
    /// # fn main() -> he_core::Result<()> {
    /// let params = Parameters::new(ParametersLiteral {
    ///     log_n: 10, log_q: vec![50, 40, 40], log_p: vec![50], alpha: None, log_scale: 40.0,
    ///     secret: SecretDistribution::UniformTernary, security: Security::InsecureForTesting,
    /// })?;
    /// let sk = SecretKey::generate(&params)?;
    /// let enc = Encryptor::new(&params, PublicKey::generate(&sk)?)?;
    /// let ev = Evaluator::new(&params)?;
    /// let pt = ev.encoder().encode(&[0.5; 4], 2, params.default_scale())?;
    /// let mut ct = enc.encrypt(&pt)?;
    /// ev.mul_const_to_scale_assign(&mut ct, 3.0, 2f64.powi(45))?;
    /// ev.rescale_assign(&mut ct)?;
    /// assert_eq!(ct.scale(), 2f64.powi(45));
    /// let got = ev.encoder().decode(&Decryptor::new(&sk).decrypt(&ct)?)?;
    /// assert!((got[0] - 1.5).abs() < 1e-6);
    /// # Ok(()) }
    /// ```
    pub fn mul_const_to_scale_assign(
        &self,
        a: &mut Ciphertext,
        c: f64,
        target_scale: f64,
    ) -> Result<()> {
        self.check_ct(a)?;
        check_scale("target scale", target_scale)?;
        let l = a.level();
        if l == 0 {
            return Err(Error::OutOfLevels {
                operation: "mul_const_to_scale (a rescale must follow)",
                needed: 1,
                found: 0,
            });
        }
        let k = self.const_scale_for_target(l, a.scale(), target_scale);
        self.mul_const_scaled_assign(a, c, k)?;
        // Record the intended scale exactly (K·Δ may differ from target·q_l in the last ulp).
        a.scale = target_scale * self.params().q()[l] as f64;
        Ok(())
    }

    /// `a · c` to `target_scale` after the next rescale (see
    /// [`mul_const_to_scale_assign`](Self::mul_const_to_scale_assign)).
    pub fn mul_const_to_scale(
        &self,
        a: &Ciphertext,
        c: f64,
        target_scale: f64,
    ) -> Result<Ciphertext> {
        let mut r = a.clone();
        self.mul_const_to_scale_assign(&mut r, c, target_scale)?;
        Ok(r)
    }

    /// Multiplies every slot by the complex constant `c`, encoded as the polynomial
    /// `round(Re c·K) + round(Im c·K)·X^{N/2}` (`K = const_scale`, in `[1, 2^126)`); the
    /// scale is multiplied by `K`, the level is kept.
    pub fn mul_complex_const_scaled_assign(
        &self,
        a: &mut Ciphertext,
        c: Complex64,
        const_scale: f64,
    ) -> Result<()> {
        self.check_ct(a)?;
        check_const_scale(const_scale)?;
        if c.im == 0.0 {
            return self.mul_const_scaled_assign(a, c.re, const_scale);
        }
        let re = round_i128(c.re * const_scale, "real part times scale")?;
        let im = round_i128(c.im * const_scale, "imaginary part times scale")?;
        self.check_scale_fits(
            a.scale() * const_scale,
            a.level(),
            "constant multiplication",
        )?;
        let k = self.half_monomial_poly(re, im, a.level())?;
        let rq = self.params().ring_q();
        for p in &mut a.c {
            rq.mul_assign(p, &k)?;
        }
        a.scale *= const_scale;
        a.seed = None;
        Ok(())
    }

    /// `a · c` for a complex constant (see
    /// [`mul_complex_const_scaled_assign`](Self::mul_complex_const_scaled_assign)).
    pub fn mul_complex_const_scaled(
        &self,
        a: &Ciphertext,
        c: Complex64,
        const_scale: f64,
    ) -> Result<Ciphertext> {
        let mut r = a.clone();
        self.mul_complex_const_scaled_assign(&mut r, c, const_scale)?;
        Ok(r)
    }

    /// Adds the complex constant `c` to every slot: `round(Re c·Δ) + round(Im c·Δ)·X^{N/2}`
    /// is added to `c_0` (`Δ` the ciphertext's scale, `|c·Δ| < 2^126`). Scale and level kept.
    pub fn add_complex_const_assign(&self, a: &mut Ciphertext, c: Complex64) -> Result<()> {
        self.check_ct(a)?;
        if c.im == 0.0 {
            return self.add_const_assign(a, c.re);
        }
        let re = round_i128(c.re * a.scale(), "real part times scale")?;
        let im = round_i128(c.im * a.scale(), "imaginary part times scale")?;
        let k = self.half_monomial_poly(re, im, a.level())?;
        self.params().ring_q().add_assign(&mut a.c[0], &k)?;
        a.seed = None;
        Ok(())
    }

    /// `a + c` for a complex constant (see
    /// [`add_complex_const_assign`](Self::add_complex_const_assign)).
    pub fn add_complex_const(&self, a: &Ciphertext, c: Complex64) -> Result<Ciphertext> {
        let mut r = a.clone();
        self.add_complex_const_assign(&mut r, c)?;
        Ok(r)
    }

    /// Multiplies every slot by the imaginary unit `i`, exactly: multiplication by the
    /// monomial `X^{N/2}` (see the module documentation), done pointwise on the evaluation
    /// form with the NTT of `X^{N/2}` (one NTT per limb, no noise growth, no level, no scale
    /// change).
    pub fn mul_by_i_assign(&self, a: &mut Ciphertext) -> Result<()> {
        self.check_ct(a)?;
        let k = self.half_monomial_poly(0, 1, a.level())?;
        let rq = self.params().ring_q();
        for p in &mut a.c {
            rq.mul_assign(p, &k)?;
        }
        a.seed = None;
        Ok(())
    }

    /// `i · a` (see [`mul_by_i_assign`](Self::mul_by_i_assign)).
    pub fn mul_by_i(&self, a: &Ciphertext) -> Result<Ciphertext> {
        let mut r = a.clone();
        self.mul_by_i_assign(&mut r)?;
        Ok(r)
    }

    /// Reinterprets the ciphertext at scale `scale` without touching its data: the decoded
    /// value is multiplied by `old_scale/scale`. Use it when the data already is the intended
    /// message at the new scale (e.g. after multiplying by integers chosen for that scale);
    /// to change the scale while keeping the value use
    /// [`scale_up_assign`](Self::scale_up_assign) or
    /// [`mul_const_to_scale_assign`](Self::mul_const_to_scale_assign).
    ///
    /// Errors: [`Error::OutOfRange`] for a scale that is not finite and positive.
    pub fn set_scale(&self, a: &mut Ciphertext, scale: f64) -> Result<()> {
        self.check_ct(a)?;
        check_scale("scale", scale)?;
        self.check_scale_fits(scale, a.level(), "set_scale")?;
        a.scale = scale;
        Ok(())
    }

    /// Multiplies data and scale by the integer `k ≥ 1`: the value is unchanged, exactly
    /// (no rounding, no level). Aligns a ciphertext to a scale `k` times larger, e.g. before
    /// adding it to a product whose scale is an integer multiple of its own.
    pub fn scale_up_assign(&self, a: &mut Ciphertext, k: u64) -> Result<()> {
        self.check_ct(a)?;
        if k == 0 {
            return Err(Error::OutOfRange {
                what: "scale-up factor",
                found: "0".into(),
                allowed: ">= 1".into(),
            });
        }
        self.check_scale_fits(a.scale() * k as f64, a.level(), "scale-up")?;
        let rq = self.params().ring_q();
        let s: Vec<u64> = rq.moduli()[..a.level() + 1]
            .iter()
            .map(|m| m.reduce(k))
            .collect();
        for p in &mut a.c {
            rq.mul_rns_scalar_assign(p, &s)?;
        }
        a.scale *= k as f64;
        a.seed = None;
        Ok(())
    }

    /// `a` scaled up by `k` (see [`scale_up_assign`](Self::scale_up_assign)).
    pub fn scale_up(&self, a: &Ciphertext, k: u64) -> Result<Ciphertext> {
        let mut r = a.clone();
        self.scale_up_assign(&mut r, k)?;
        Ok(r)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::ckks::{Decryptor, Encryptor, PrecisionStats};
    use crate::math::Prng;
    use crate::rlwe::*;
    use std::sync::Arc;

    struct Kit {
        params: Arc<Parameters>,
        sk: SecretKey,
        enc: Encryptor,
        ev: Evaluator,
    }

    fn kit() -> Kit {
        let params = Parameters::new(ParametersLiteral {
            log_n: 11,
            log_q: vec![55, 45, 45, 45],
            log_p: vec![56],
            alpha: None,
            log_scale: 45.0,
            secret: SecretDistribution::UniformTernary,
            security: Security::InsecureForTesting,
        })
        .unwrap();
        let mut prng = Prng::from_seed([7; 32]);
        let sk = SecretKey::generate_with(&params, &mut prng).unwrap();
        let pk = PublicKey::generate(&sk).unwrap();
        Kit {
            enc: Encryptor::new(&params, pk).unwrap(),
            ev: Evaluator::new(&params).unwrap(),
            params,
            sk,
        }
    }

    fn values(n: usize, seed: u8) -> Vec<Complex64> {
        let mut p = Prng::from_seed([seed; 32]);
        let mut u = || (p.next_u64() >> 11) as f64 / (1u64 << 53) as f64 * 2.0 - 1.0;
        (0..n).map(|_| Complex64::new(u(), u())).collect()
    }

    impl Kit {
        fn encrypt(&self, v: &[Complex64]) -> Ciphertext {
            let pt = self
                .ev
                .encoder()
                .encode_complex(v, self.params.max_level(), self.params.default_scale())
                .unwrap();
            self.enc.encrypt(&pt).unwrap()
        }
        fn stats(&self, what: &str, want: &[Complex64], ct: &Ciphertext) -> PrecisionStats {
            let pt = Decryptor::new(&self.sk).decrypt(ct).unwrap();
            let got = self.ev.encoder().decode_complex(&pt).unwrap();
            let s = PrecisionStats::compare_complex(want, &got);
            println!("[N=2^11 level={}] {what:<32} {s}", ct.level());
            s
        }
    }

    #[test]
    fn mul_const_scaled_and_to_scale() {
        let k = kit();
        let z = values(k.params.slots(), 1);
        let ct = k.encrypt(&z);
        // Constant encoded at 2^100: spans several limbs, exact i128 reduction.
        let c = -1.7;
        let mut a = k.ev.mul_const_scaled(&ct, c, 2f64.powi(100)).unwrap();
        assert_eq!(a.scale(), ct.scale() * 2f64.powi(100));
        assert_eq!(a.level(), ct.level());
        let want: Vec<Complex64> = z.iter().map(|v| v * c).collect();
        // (The decoder composes coefficients below ~2^120: rescale twice before decoding.)
        k.ev.rescale_assign(&mut a).unwrap();
        k.ev.rescale_assign(&mut a).unwrap();
        assert!(
            k.stats("mul_const_scaled 2^100, 2 rescales", &want, &a)
                .mean_bits
                > 30.0
        );
        // To a target scale that is not the prime.
        let target = 2f64.powi(43) * 1.234_567;
        let mut b = k.ev.mul_const_to_scale(&ct, c, target).unwrap();
        k.ev.rescale_assign(&mut b).unwrap();
        assert!(((b.scale() - target) / target).abs() < 1e-15);
        assert!(k.stats("mul_const_to_scale 2^43.3", &want, &b).mean_bits > 30.0);
    }

    #[test]
    fn constant_errors_are_typed() {
        let k = kit();
        let ct = k.encrypt(&values(4, 2));
        let e = k.ev.mul_const_scaled(&ct, 1.0, 2f64.powi(127)).unwrap_err();
        assert!(matches!(e, Error::OutOfRange { .. }), "{e}");
        let e = k.ev.mul_const_scaled(&ct, 4.0, 2f64.powi(125)).unwrap_err();
        assert!(matches!(e, Error::OutOfRange { .. }), "{e}");
        let e = k.ev.mul_const_scaled(&ct, 1.0, 0.5).unwrap_err();
        assert!(matches!(e, Error::OutOfRange { .. }), "{e}");
        // Target far below what one prime can reach: K < 1.
        let e = k.ev.mul_const_to_scale(&ct, 1.0, 1.0).unwrap_err();
        assert!(matches!(e, Error::OutOfRange { .. }), "{e}");
        let mut low = ct.clone();
        k.ev.drop_to_level(&mut low, 0).unwrap();
        let e =
            k.ev.mul_const_to_scale(&low, 1.0, 2f64.powi(40))
                .unwrap_err();
        assert!(matches!(e, Error::OutOfLevels { .. }), "{e}");
        let mut x = ct.clone();
        assert!(matches!(
            k.ev.set_scale(&mut x, f64::NAN),
            Err(Error::OutOfRange { .. })
        ));
        assert!(matches!(
            k.ev.scale_up_assign(&mut x, 0),
            Err(Error::OutOfRange { .. })
        ));
        let e =
            k.ev.add_complex_const(&ct, Complex64::new(0.0, 2f64.powi(90)))
                .unwrap_err();
        assert!(matches!(e, Error::OutOfRange { .. }), "{e}");
    }

    #[test]
    fn complex_constants_and_i() {
        let k = kit();
        let z = values(k.params.slots(), 3);
        let ct = k.encrypt(&z);
        let i = Complex64::new(0.0, 1.0);
        let a = k.ev.mul_by_i(&ct).unwrap();
        assert_eq!((a.level(), a.scale()), (ct.level(), ct.scale()));
        let want: Vec<Complex64> = z.iter().map(|v| v * i).collect();
        assert!(k.stats("mul_by_i", &want, &a).mean_bits > 30.0);
        let c = Complex64::new(0.3, -1.25);
        let mut b =
            k.ev.mul_complex_const_scaled(&ct, c, 2f64.powi(45))
                .unwrap();
        k.ev.rescale_assign(&mut b).unwrap();
        let want: Vec<Complex64> = z.iter().map(|v| v * c).collect();
        assert!(k.stats("mul_complex_const_scaled", &want, &b).mean_bits > 30.0);
        let d = k.ev.add_complex_const(&ct, c).unwrap();
        let want: Vec<Complex64> = z.iter().map(|v| v + c).collect();
        assert!(k.stats("add_complex_const", &want, &d).mean_bits > 30.0);
    }

    #[test]
    fn set_scale_reinterprets_and_scale_up_keeps_the_value() {
        let k = kit();
        let z = values(k.params.slots(), 4);
        let ct = k.encrypt(&z);
        let up = k.ev.scale_up(&ct, 1000).unwrap();
        assert_eq!(up.scale(), ct.scale() * 1000.0);
        assert!(k.stats("scale_up 1000", &z, &up).mean_bits > 30.0);
        let mut re = ct.clone();
        k.ev.set_scale(&mut re, ct.scale() * 2.0).unwrap();
        let want: Vec<Complex64> = z.iter().map(|v| v / 2.0).collect();
        assert!(k.stats("set_scale x2 (value / 2)", &want, &re).mean_bits > 30.0);
        // Aligning: x (scale Δ) + x (scale 1000 Δ) after scale_up.
        let mut s = up.clone();
        k.ev.add_assign(&mut s, &k.ev.scale_up(&ct, 1000).unwrap())
            .unwrap();
        let want: Vec<Complex64> = z.iter().map(|v| v * 2.0).collect();
        assert!(k.stats("aligned sum", &want, &s).mean_bits > 30.0);
    }
}
