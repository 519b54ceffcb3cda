//! Encrypted polynomial evaluation against `f64` references, with precision in bits, exact
//! output scales and levels, the simulator's agreement, and typed refusals.

use super::*;
use crate::ckks::{Ciphertext, Decryptor, Encoder, Encryptor, Evaluator, PrecisionStats};
use crate::math::Prng;
use crate::rlwe::*;
use crate::Error;
use std::sync::Arc;

struct Kit {
    params: Arc<Parameters>,
    sk: SecretKey,
    enc: Encryptor,
    ecd: Encoder,
    eval: Evaluator,
}

fn kit(log_n: u32, log_q: Vec<u32>, log_p: Vec<u32>, log_scale: f64) -> Kit {
    let params = Parameters::new(ParametersLiteral {
        log_n,
        log_q,
        log_p,
        alpha: None,
        log_scale,
        secret: SecretDistribution::UniformTernary,
        security: Security::InsecureForTesting,
    })
    .unwrap();
    let mut prng = Prng::from_seed([11; 32]);
    let sk = SecretKey::generate_with(&params, &mut prng).unwrap();
    let pk = PublicKey::generate(&sk).unwrap();
    let keys = EvalKeySet::generate(&sk, true, &[], false).unwrap();
    Kit {
        enc: Encryptor::new(&params, pk).unwrap(),
        ecd: Encoder::new(&params).unwrap(),
        eval: Evaluator::with_keys(&params, Arc::new(keys)).unwrap(),
        params,
        sk,
    }
}

/// 40-bit scale; primes of 40 bits (not equal to the scale).
fn kit40(levels: usize) -> Kit {
    let mut q = vec![55];
    q.extend(std::iter::repeat_n(40, levels));
    kit(11, q, vec![56, 56], 40.0)
}

fn inputs(n: usize, a: f64, b: f64, seed: u8) -> Vec<f64> {
    let mut p = Prng::from_seed([seed; 32]);
    (0..n)
        .map(|_| a + (b - a) * ((p.next_u64() >> 11) as f64 / (1u64 << 53) as f64))
        .collect()
}

impl Kit {
    fn encrypt(&self, v: &[f64], level: usize) -> Ciphertext {
        let pt = self
            .ecd
            .encode(v, level, self.params.default_scale())
            .unwrap();
        self.enc.encrypt(&pt).unwrap()
    }
    fn decrypt(&self, ct: &Ciphertext) -> Vec<f64> {
        self.ecd
            .decode(&Decryptor::new(&self.sk).decrypt(ct).unwrap())
            .unwrap()
    }
    fn sim(&self) -> CleartextBackend<'static> {
        CleartextBackend::new(self.params.q())
    }
}

fn sigmoid(x: f64) -> f64 {
    1.0 / (1.0 + (-x).exp())
}

#[test]
fn smooth_functions_at_several_degrees() {
    let k = kit40(8);
    let pe = PolynomialEvaluator::new(&k.eval);
    let sim = k.sim();
    let ps = PolynomialEvaluator::new(&sim);
    let top = k.params.max_level();
    let target = 2f64.powi(40) * 1.0123; // deliberately not a power of two
    type F = fn(f64) -> f64;
    let cases: [(&str, F, f64, usize); 6] = [
        ("exp", f64::exp, 1.0, 7),
        ("exp", f64::exp, 2.0, 15),
        ("sigmoid", sigmoid, 8.0, 31),
        ("cos", f64::cos, 6.0, 31),
        ("sigmoid", sigmoid, 16.0, 63),
        ("sin", f64::sin, 1.0, 63),
    ];
    for (name, f, bound, degree) in cases {
        let p = Polynomial::interpolate(f, degree, -bound, bound).unwrap();
        let x = inputs(k.params.slots(), -bound, bound, degree as u8);
        let ct = k.encrypt(&x, top);
        let out = pe.evaluate(&ct, &p, target).unwrap();
        let depth = p.depth();
        assert_eq!(out.level(), top - depth, "{name} degree {degree}");
        assert!(((out.scale() - target) / target).abs() < 2f64.powi(-40));
        let got = k.decrypt(&out);
        let want_p: Vec<f64> = x.iter().map(|v| p.eval(*v)).collect();
        let want_f: Vec<f64> = x.iter().map(|v| f(*v)).collect();
        let s_p = PrecisionStats::compare(&want_p, &got);
        let s_f = PrecisionStats::compare(&want_f, &got);
        println!(
            "[N=2^11 logQ=55+40x8 Δ=2^40] {name} on [-{bound}, {bound}] degree {degree} depth {depth}:\n  vs polynomial {s_p}\n  vs function   {s_f}"
        );
        assert!(s_p.mean_bits >= 24.0, "{name} {degree}: {s_p}");
        assert!(s_p.min_bits >= 18.0, "{name} {degree}: {s_p}");
        // The simulator runs the same code: same level and scale, values within the noise.
        let sx = sim.value(x.clone(), top, k.params.default_scale()).unwrap();
        let sy = ps.evaluate(&sx, &p, target).unwrap();
        assert_eq!((sy.level, sy.scale), (out.level(), out.scale()));
        let s_sim = PrecisionStats::compare(&sy.values, &got);
        assert!(s_sim.mean_bits >= 24.0, "sim vs encrypted: {s_sim}");
        let s_sim_p = PrecisionStats::compare(&want_p, &sy.values);
        assert!(s_sim_p.mean_bits >= 35.0, "sim vs polynomial: {s_sim_p}");
    }
}

#[test]
fn odd_and_even_polynomials_and_constants() {
    let k = kit40(5);
    let pe = PolynomialEvaluator::new(&k.eval);
    let top = k.params.max_level();
    let target = k.params.default_scale();
    let x = inputs(k.params.slots(), -1.0, 1.0, 3);
    let ct = k.encrypt(&x, top);
    for (name, p) in [
        (
            "odd sin(3x) deg 15",
            Polynomial::interpolate(|x| (3.0 * x).sin(), 15, -1.0, 1.0),
        ),
        (
            "even cos(3x) deg 14",
            Polynomial::interpolate(|x| (3.0 * x).cos(), 14, -1.0, 1.0),
        ),
        (
            "constant 0.75",
            Polynomial::chebyshev(vec![0.75], -1.0, 1.0),
        ),
        (
            "T_5 alone",
            Polynomial::chebyshev(vec![0.0, 0.0, 0.0, 0.0, 0.0, 1.0], -1.0, 1.0),
        ),
    ] {
        let p = p.unwrap();
        let out = pe.evaluate(&ct, &p, target).unwrap();
        assert_eq!(out.level(), top - p.depth(), "{name}");
        assert!(((out.scale() - target) / target).abs() < 2f64.powi(-40));
        let want: Vec<f64> = x.iter().map(|v| p.eval(*v)).collect();
        let s = PrecisionStats::compare(&want, &k.decrypt(&out));
        println!(
            "[N=2^11 Δ=2^40] {name:<22} {:?} depth {} {s}",
            p.parity(),
            p.depth()
        );
        assert!(s.mean_bits >= 25.0, "{name}: {s}");
    }
}

#[test]
fn refusal_when_levels_do_not_fit() {
    let k = kit40(5);
    let pe = PolynomialEvaluator::new(&k.eval);
    let p = Polynomial::interpolate(f64::exp, 31, -1.0, 1.0).unwrap();
    assert_eq!(p.depth(), 5);
    let ct = k.encrypt(&[0.5; 8], 4);
    let e = pe.evaluate(&ct, &p, k.params.default_scale()).unwrap_err();
    assert_eq!(
        e,
        Error::OutOfLevels {
            operation: "polynomial evaluation",
            needed: 5,
            found: 4
        }
    );
    // Off [-1, 1]: one level more.
    let q = Polynomial::interpolate(f64::exp, 15, -2.0, 2.0).unwrap();
    assert_eq!(q.depth(), 5);
    assert!(matches!(
        pe.evaluate(&ct, &q, k.params.default_scale()),
        Err(Error::OutOfLevels {
            needed: 5,
            found: 4,
            ..
        })
    ));
    let sim = k.sim();
    let sx = sim.value(vec![0.5], 4, 2f64.powi(40)).unwrap();
    assert!(matches!(
        PolynomialEvaluator::new(&sim).evaluate(&sx, &p, 2f64.powi(40)),
        Err(Error::OutOfLevels {
            needed: 5,
            found: 4,
            ..
        })
    ));
    assert!(matches!(
        pe.evaluate(&k.encrypt(&[0.5], 5), &p, f64::NAN),
        Err(Error::OutOfRange { .. })
    ));
}

#[test]
fn high_degree_cosine_at_60_bit_scale() {
    // What bootstrapping asks for: a degree-119 Chebyshev approximation of a scaled cosine on
    // [-1, 1], 60-bit target scale.
    let k = kit(10, vec![61, 60, 60, 60, 60, 60, 60, 60], vec![61, 61], 60.0);
    let f = |x: f64| (6.0 * std::f64::consts::PI * x).cos();
    let p = Polynomial::interpolate(f, 119, -1.0, 1.0).unwrap();
    assert_eq!(p.depth(), 7);
    let x = inputs(k.params.slots(), -1.0, 1.0, 9);
    let ct = k.encrypt(&x, 7);
    let target = 2f64.powi(60);
    let t0 = std::time::Instant::now();
    let out = PolynomialEvaluator::new(&k.eval)
        .evaluate(&ct, &p, target)
        .unwrap();
    let secs = t0.elapsed().as_secs_f64();
    assert_eq!(out.level(), 0);
    assert!(((out.scale() - target) / target).abs() < 2f64.powi(-40));
    let want: Vec<f64> = x.iter().map(|v| f(*v)).collect();
    let s = PrecisionStats::compare(&want, &k.decrypt(&out));
    println!("[N=2^10 logQ=61+60x7 Δ=2^60] cos(6πx) degree 119, {secs:.3}s: {s}");
    assert!(s.mean_bits >= 35.0, "{s}");
}

#[test]
fn composite_sign_and_relu() {
    let eps = 2f64.powi(-6);
    let sign = CompositeSign::new(16.0, eps).unwrap();
    println!(
        "composite sign ε=2^-6: degrees {:?}, depth {}, error 2^-{:.2}",
        sign.degrees(),
        sign.depth(),
        sign.precision_bits()
    );
    assert!(sign.error() <= 2f64.powi(-16));
    let k = kit40(sign.relu_depth());
    let pe = PolynomialEvaluator::new(&k.eval);
    let top = k.params.max_level();
    let target = k.params.default_scale();
    let x: Vec<f64> = inputs(k.params.slots(), eps, 1.0, 5)
        .iter()
        .enumerate()
        .map(|(i, v)| if i % 2 == 0 { *v } else { -v })
        .collect();
    let ct = k.encrypt(&x, top);
    let s_ct = sign.evaluate_sign(&pe, &ct, target).unwrap();
    assert_eq!(s_ct.level(), top - sign.depth());
    assert!(((s_ct.scale() - target) / target).abs() < 2f64.powi(-40));
    let want: Vec<f64> = x.iter().map(|v| v.signum()).collect();
    let st = PrecisionStats::compare(&want, &k.decrypt(&s_ct));
    println!("[N=2^11 Δ=2^40] sign, |x| >= 2^-6: {st}");
    assert!(st.min_bits >= 10.0 && st.mean_bits >= 14.0, "{st}");
    let r_ct = sign.evaluate_relu(&pe, &ct, target).unwrap();
    assert_eq!(r_ct.level(), top - sign.relu_depth());
    assert!(((r_ct.scale() - target) / target).abs() < 2f64.powi(-40));
    let want: Vec<f64> = x.iter().map(|v| v.max(0.0)).collect();
    let rt = PrecisionStats::compare(&want, &k.decrypt(&r_ct));
    println!("[N=2^11 Δ=2^40] ReLU, |x| >= 2^-6: {rt}");
    assert!(rt.min_bits >= 12.0 && rt.mean_bits >= 16.0, "{rt}");
    // Refusal.
    let low = k.encrypt(&x, sign.depth() - 1);
    assert!(matches!(
        sign.evaluate_sign(&pe, &low, target),
        Err(Error::OutOfLevels { .. })
    ));
}

#[test]
fn composite_sign_with_paper_degrees() {
    for (degrees, eps) in [
        (&[15usize, 15, 27][..], 2f64.powi(-8)),
        (&[7, 15, 15, 27], 2f64.powi(-12)),
    ] {
        let s = CompositeSign::with_degrees(degrees, eps).unwrap();
        println!(
            "composite sign {degrees:?} ε=2^{:.0}: error 2^-{:.2}, depth {}",
            eps.log2(),
            s.precision_bits(),
            s.depth()
        );
        assert!(s.precision_bits() > 8.0);
        // The same code path in cleartext reproduces the composite.
        let sim = CleartextBackend::new(&[1u64 << 45; 20]);
        let xs: Vec<f64> = (0..200)
            .map(|i| eps + (1.0 - eps) * i as f64 / 199.0)
            .collect();
        let v = sim.value(xs.clone(), 19, 2f64.powi(45)).unwrap();
        let out = s
            .evaluate_sign(&PolynomialEvaluator::new(&sim), &v, 2f64.powi(45))
            .unwrap();
        for (x, y) in xs.iter().zip(&out.values) {
            assert!((s.eval(*x) - y).abs() < 1e-6);
        }
    }
}

/// Counts the ciphertext-ciphertext products of an evaluation (the cost that matters).
struct Counting<'a> {
    inner: CleartextBackend<'a>,
    products: std::cell::Cell<usize>,
}

impl PolynomialBackend for Counting<'_> {
    type Value = SimulatedValue;
    fn level(&self, v: &SimulatedValue) -> usize {
        self.inner.level(v)
    }
    fn scale(&self, v: &SimulatedValue) -> f64 {
        self.inner.scale(v)
    }
    fn prime(&self, level: usize) -> crate::Result<f64> {
        self.inner.prime(level)
    }
    fn mul_relin(&self, a: &SimulatedValue, b: &SimulatedValue) -> crate::Result<SimulatedValue> {
        self.products.set(self.products.get() + 1);
        self.inner.mul_relin(a, b)
    }
    fn mul_int_assign(&self, a: &mut SimulatedValue, k: i64) -> crate::Result<()> {
        self.inner.mul_int_assign(a, k)
    }
    fn mul_const_scaled_assign(&self, a: &mut SimulatedValue, c: f64, s: f64) -> crate::Result<()> {
        self.inner.mul_const_scaled_assign(a, c, s)
    }
    fn add_assign(&self, a: &mut SimulatedValue, b: &SimulatedValue) -> crate::Result<()> {
        self.inner.add_assign(a, b)
    }
    fn add_const_assign(&self, a: &mut SimulatedValue, c: f64) -> crate::Result<()> {
        self.inner.add_const_assign(a, c)
    }
    fn rescale_assign(&self, a: &mut SimulatedValue) -> crate::Result<()> {
        self.inner.rescale_assign(a)
    }
    fn drop_to_level(&self, a: &mut SimulatedValue, level: usize) -> crate::Result<()> {
        self.inner.drop_to_level(a, level)
    }
}

#[test]
fn product_counts_and_depth_at_every_degree() {
    let q: Vec<u64> = (0..12).map(|i| (1u64 << 45) - 229 - 2 * i).collect();
    let be = Counting {
        inner: CleartextBackend::new(&q),
        products: std::cell::Cell::new(0),
    };
    let pe = PolynomialEvaluator::new(&be);
    let xs: Vec<f64> = (0..64).map(|i| i as f64 / 32.0 - 1.0).collect();
    let mut report = Vec::new();
    for d in 1..=130 {
        let p = Polynomial::interpolate(|x| (2.0 * x).exp() / 8.0, d, -1.0, 1.0).unwrap();
        be.products.set(0);
        let x = be.inner.value(xs.clone(), 11, 2f64.powi(45)).unwrap();
        let y = pe.evaluate(&x, &p, 2f64.powi(45)).unwrap();
        assert_eq!(y.level, 11 - depth_for_degree(d), "degree {d}");
        assert!(
            (y.scale / 2f64.powi(45) - 1.0).abs() < 2f64.powi(-40),
            "degree {d}"
        );
        for (x, v) in xs.iter().zip(&y.values) {
            assert!((p.eval(*x) - v).abs() < 1e-10, "degree {d}");
        }
        if d.is_power_of_two() || (d + 1).is_power_of_two() || d == 119 {
            report.push((d, be.products.get()));
        }
    }
    println!("ciphertext products by degree: {report:?}");
}

#[test]
fn scaled_relu_is_the_factor_times_relu_at_the_same_depth() {
    let sign = CompositeSign::new(10.0, 2f64.powi(-6)).unwrap();
    let q: Vec<u64> = (0..20).map(|i| (1u64 << 45) - 229 - 2 * i).collect();
    let sim = CleartextBackend::new(&q);
    let pe = PolynomialEvaluator::new(&sim);
    let xs: Vec<f64> = (0..101).map(|i| i as f64 / 50.0 - 1.0).collect();
    let top = 19;
    let target = 2f64.powi(45);
    let v = sim.value(xs.clone(), top, target).unwrap();
    let plain = sign.evaluate_relu(&pe, &v, target).unwrap();
    let scaled = sign.evaluate_scaled_relu(&pe, &v, 6.5, target).unwrap();
    assert_eq!(scaled.level, top - sign.relu_depth());
    assert_eq!(scaled.level, plain.level);
    assert!((scaled.scale / target - 1.0).abs() < 2f64.powi(-40));
    for ((x, a), b) in xs.iter().zip(&plain.values).zip(&scaled.values) {
        assert!((6.5 * a - b).abs() < 1e-9, "x = {x}: 6.5·{a} vs {b}");
        if x.abs() >= 2f64.powi(-6) {
            assert!((b - 6.5 * x.max(0.0)).abs() <= 6.5 * x.abs() * sign.error() / 2.0 + 1e-9);
        }
    }
}
