//! CKKS tests: precision statistics in bits for every operation, printed (run with
//! `--nocapture` to see them), and correctness of rotations, hoisting and conjugation.

use super::*;
use crate::math::Prng;
use crate::rlwe::*;
use crate::Error;
use num_complex::Complex64;
use std::collections::BTreeMap;
use std::sync::Arc;

struct Kit {
    params: Arc<Parameters>,
    sk: SecretKey,
    enc: Encryptor,
    ecd: Encoder,
    eval: Evaluator,
}

fn kit(params: Arc<Parameters>, steps: &[i64], conj: bool) -> Kit {
    let mut prng = Prng::from_seed([42; 32]);
    let sk = SecretKey::generate_with(&params, &mut prng).unwrap();
    let pk = PublicKey::generate(&sk).unwrap();
    let keys = EvalKeySet::generate(&sk, true, steps, conj).unwrap();
    Kit {
        enc: Encryptor::new(&params, pk).unwrap(),
        ecd: Encoder::new(&params).unwrap(),
        eval: Evaluator::with_keys(&params, Arc::new(keys)).unwrap(),
        params,
        sk,
    }
}

fn small(log_n: u32, log_q: Vec<u32>, log_p: Vec<u32>, log_scale: f64) -> Arc<Parameters> {
    Parameters::new(ParametersLiteral {
        log_n,
        log_q,
        log_p,
        alpha: None,
        log_scale,
        secret: SecretDistribution::UniformTernary,
        security: Security::InsecureForTesting,
    })
    .unwrap()
}

fn values(n: usize, seed: u8) -> Vec<Complex64> {
    let mut p = Prng::from_seed([seed; 32]);
    let mut u = || (p.next_u64() >> 11) as f64 / (1u64 << 53) as f64 * 2.0 - 1.0;
    (0..n).map(|_| Complex64::new(u(), u())).collect()
}

impl Kit {
    fn encrypt(&self, v: &[Complex64]) -> Ciphertext {
        let pt = self
            .ecd
            .encode_complex(v, self.params.max_level(), self.params.default_scale())
            .unwrap();
        self.enc.encrypt(&pt).unwrap()
    }
    fn decrypt(&self, ct: &Ciphertext) -> Vec<Complex64> {
        self.ecd
            .decode_complex(&Decryptor::new(&self.sk).decrypt(ct).unwrap())
            .unwrap()
    }
    fn stats(&self, what: &str, want: &[Complex64], ct: &Ciphertext) -> PrecisionStats {
        let s = PrecisionStats::compare_complex(want, &self.decrypt(ct));
        println!(
            "[N=2^{} L={} level={}] {what:<28} {s}",
            self.params.literal().log_n,
            self.params.max_level(),
            ct.level()
        );
        s
    }
}

#[test]
fn encoder_matches_naive_canonical_embedding() {
    let params = small(5, vec![50, 40], vec![55], 30.0);
    let ecd = Encoder::new(&params).unwrap();
    let n = params.degree();
    let z = values(n / 2, 1);
    let pt = ecd.encode_complex(&z, 1, 2f64.powi(30)).unwrap();
    let coeffs = params.ring_q().to_coeff(pt.poly().clone()).unwrap();
    let m = params.ring_q().moduli()[0];
    let c: Vec<f64> = coeffs
        .limb(0)
        .unwrap()
        .iter()
        .map(|x| m.center(*x) as f64 / 2f64.powi(30))
        .collect();
    // z_j = m(ζ^(5^j)), ζ = exp(iπ/N)
    for (j, zj) in z.iter().enumerate() {
        let g = (0..j).fold(1u64, |g, _| g * 5 % (2 * n as u64));
        let eval: Complex64 = c
            .iter()
            .enumerate()
            .map(|(k, ck)| {
                Complex64::from_polar(*ck, std::f64::consts::PI * (g as f64) * k as f64 / n as f64)
            })
            .sum();
        assert!((eval - zj).norm() < 1e-6, "slot {j}: {eval} vs {zj}");
    }
    let s = PrecisionStats::compare_complex(&z, &ecd.decode_complex(&pt).unwrap());
    assert!(s.min_bits > 25.0, "{s}");
}

#[test]
fn precision_n14_mul_relin_rescale() {
    let k = kit(Preset::N14Depth6.parameters().unwrap(), &[1], true);
    let slots = k.params.slots();
    let (a, b) = (values(slots, 2), values(slots, 3));
    let (ca, cb) = (k.encrypt(&a), k.encrypt(&b));
    let s = k.stats("encrypt/decrypt", &a, &ca);
    assert!(s.mean_bits > 28.0, "{s}");
    let sum: Vec<Complex64> = a.iter().zip(&b).map(|(x, y)| x + y).collect();
    assert!(
        k.stats("add", &sum, &k.eval.add(&ca, &cb).unwrap())
            .mean_bits
            > 27.0
    );
    let diff: Vec<Complex64> = a.iter().zip(&b).map(|(x, y)| x - y).collect();
    assert!(
        k.stats("sub", &diff, &k.eval.sub(&ca, &cb).unwrap())
            .mean_bits
            > 27.0
    );
    let prod: Vec<Complex64> = a.iter().zip(&b).map(|(x, y)| x * y).collect();
    let mut c = k.eval.mul_relin(&ca, &cb).unwrap();
    k.eval.rescale_assign(&mut c).unwrap();
    assert!((c.scale() / k.params.default_scale()).log2().abs() < 0.01);
    let s = k.stats("mul+relin+rescale", &prod, &c);
    assert!(
        s.mean_bits >= 25.0,
        "issue #3 requires mean >= 25 bits: {s}"
    );
    let sq: Vec<Complex64> = a.iter().map(|x| x * x).collect();
    let mut c = k.eval.square_relin(&ca).unwrap();
    k.eval.rescale_assign(&mut c).unwrap();
    assert!(k.stats("square+relin+rescale", &sq, &c).mean_bits >= 25.0);
    // constants and plaintexts
    let mut c = ca.clone();
    k.eval.mul_const_assign(&mut c, -1.75).unwrap();
    k.eval.rescale_assign(&mut c).unwrap();
    k.eval.add_const_assign(&mut c, 0.5).unwrap();
    let want: Vec<Complex64> = a.iter().map(|x| x * -1.75 + 0.5).collect();
    assert!(k.stats("mul_const+rescale+add_const", &want, &c).mean_bits > 25.0);
    assert!(
        (c.scale() - ca.scale()).abs() / ca.scale() < 1e-12,
        "mul_const keeps the scale exactly"
    );
    let mut c = ca.clone();
    k.eval.mul_int_assign(&mut c, 3).unwrap();
    let want: Vec<Complex64> = a.iter().map(|x| x * 3.0).collect();
    assert!(k.stats("mul_int", &want, &c).mean_bits > 25.0);
    let pt = k
        .ecd
        .encode_complex(&b, ca.level(), k.params.default_scale())
        .unwrap();
    let mut c = ca.clone();
    k.eval.mul_plain_assign(&mut c, &pt).unwrap();
    k.eval.rescale_assign(&mut c).unwrap();
    assert!(k.stats("mul_plain+rescale", &prod, &c).mean_bits > 25.0);
    let r = k.eval.rotate(&ca, 1).unwrap();
    let want: Vec<Complex64> = (0..slots).map(|i| a[(i + 1) % slots]).collect();
    assert!(k.stats("rotate(1)", &want, &r).mean_bits > 25.0);
    let cj = k.eval.conjugate(&ca).unwrap();
    let want: Vec<Complex64> = a.iter().map(|x| x.conj()).collect();
    assert!(k.stats("conjugate", &want, &cj).mean_bits > 25.0);
    // secret-key (seeded) encryption
    let pt = k
        .ecd
        .encode_complex(&a, k.params.max_level(), k.params.default_scale())
        .unwrap();
    let cs = Decryptor::new(&k.sk).encrypt_symmetric(&pt).unwrap();
    assert!(cs.seed().is_some());
    assert!(k.stats("symmetric encrypt/decrypt", &a, &cs).mean_bits > 28.0);
}

#[test]
fn multiplication_chain_to_last_level() {
    let k = kit(Preset::N14Depth6.parameters().unwrap(), &[], false);
    let slots = k.params.slots();
    // Values on the unit circle keep their magnitude under products.
    let a: Vec<Complex64> = values(slots, 4)
        .iter()
        .map(|z| Complex64::from_polar(1.0, z.arg()))
        .collect();
    let b: Vec<Complex64> = values(slots, 5)
        .iter()
        .map(|z| Complex64::from_polar(1.0, z.arg()))
        .collect();
    let mut want = a.clone();
    let mut c = k.encrypt(&a);
    let cb = k.encrypt(&b);
    let mut cb_l = cb.clone();
    for depth in 1..=k.params.max_level() {
        k.eval.drop_to_level(&mut cb_l, c.level()).unwrap();
        c = k.eval.mul_relin(&c, &cb_l).unwrap();
        k.eval.rescale_assign(&mut c).unwrap();
        want.iter_mut().zip(&b).for_each(|(w, y)| *w *= y);
        let s = k.stats(&format!("chain depth {depth}"), &want, &c);
        assert!(s.mean_bits > 18.0, "{s}");
    }
    assert_eq!(c.level(), 0);
    assert!(matches!(k.eval.rescale(&c), Err(Error::OutOfLevels { .. })));
}

#[test]
fn every_rotation_step_small_n() {
    let params = small(6, vec![55, 45], vec![60], 40.0);
    let slots = params.slots() as i64;
    let steps: Vec<i64> = (-(slots - 1)..slots).collect();
    let k = kit(params, &steps, true);
    let a = values(slots as usize, 6);
    let ca = k.encrypt(&a);
    for s in &steps {
        let r = k.eval.rotate(&ca, *s).unwrap();
        let want: Vec<Complex64> = (0..slots)
            .map(|i| a[(i + s).rem_euclid(slots) as usize])
            .collect();
        let p = PrecisionStats::compare_complex(&want, &k.decrypt(&r));
        assert!(p.min_bits > 20.0, "rotation by {s}: {p}");
    }
    let hoisted = k.eval.rotate_hoisted(&ca, &steps).unwrap();
    for (s, h) in steps.iter().zip(&hoisted) {
        let plain = k.decrypt(&k.eval.rotate(&ca, *s).unwrap());
        let p = PrecisionStats::compare_complex(&plain, &k.decrypt(h));
        assert!(
            p.min_bits > 20.0,
            "hoisted rotation by {s} differs from plain: {p}"
        );
    }
    let want: Vec<Complex64> = a.iter().map(|x| x.conj()).collect();
    let p = PrecisionStats::compare_complex(&want, &k.decrypt(&k.eval.conjugate(&ca).unwrap()));
    assert!(p.min_bits > 20.0, "conjugation: {p}");
}

#[test]
fn hoisted_equals_plain_n13() {
    let params = small(13, vec![60, 40, 40], vec![60, 60], 40.0);
    let steps = [1i64, 2, 3, -5, 100, 1000];
    let k = kit(params, &steps, false);
    let slots = k.params.slots();
    let a = values(slots, 7);
    let ca = k.encrypt(&a);
    let hoisted = k.eval.rotate_hoisted(&ca, &steps).unwrap();
    for (s, h) in steps.iter().zip(&hoisted) {
        let want: Vec<Complex64> = (0..slots as i64)
            .map(|i| a[(i + s).rem_euclid(slots as i64) as usize])
            .collect();
        let ph = k.stats(&format!("hoisted rotate({s})"), &want, h);
        let pp = k.stats(
            &format!("plain rotate({s})"),
            &want,
            &k.eval.rotate(&ca, *s).unwrap(),
        );
        assert!(
            ph.mean_bits > 25.0 && (ph.mean_bits - pp.mean_bits).abs() < 1.5,
            "{ph} vs {pp}"
        );
    }
}

#[test]
fn sum_slots_and_bsgs_linear_transform() {
    let params = small(8, vec![55, 45, 45], vec![60, 60], 45.0);
    let slots = params.slots();
    let diag_idx: Vec<i64> = vec![0, 1, 2, 5, 17, 63, 100, 127];
    let n1 = 4;
    let mut steps = Evaluator::linear_transform_steps(diag_idx.iter().copied(), n1, slots).unwrap();
    steps.extend([1, 2, 4, 8]);
    let k = kit(params, &steps, false);
    let a = values(slots, 8);
    let ca = k.encrypt(&a);
    let s = k.eval.sum_slots(&ca, 16).unwrap();
    let want: Vec<Complex64> = (0..slots)
        .map(|i| (0..16).map(|j| a[(i + j) % slots]).sum())
        .collect();
    assert!(k.stats("sum_slots(16)", &want, &s).mean_bits > 25.0);
    let mut diags = BTreeMap::new();
    for (t, d) in diag_idx.iter().enumerate() {
        diags.insert(*d, values(slots, 20 + t as u8));
    }
    let y = k.eval.linear_transform(&ca, &diags, Some(n1)).unwrap();
    let want: Vec<Complex64> = (0..slots)
        .map(|i| {
            diags
                .iter()
                .map(|(kk, d)| d[i] * a[(i + *kk as usize) % slots])
                .sum()
        })
        .collect();
    let p = k.stats("BSGS linear transform", &want, &y);
    assert!(p.mean_bits > 25.0, "{p}");
    assert_eq!(y.level(), ca.level() - 1);
    assert!((y.scale() / ca.scale() - 1.0).abs() < 1e-9);
}

#[test]
fn mismatches_are_typed_errors() {
    let k = kit(small(10, vec![50, 40, 40], vec![55], 40.0), &[], false);
    let a = values(4, 9);
    let ca = k.encrypt(&a);
    let mut low = ca.clone();
    k.eval.drop_to_level(&mut low, 1).unwrap();
    let e = k.eval.add(&ca, &low).unwrap_err();
    assert!(
        matches!(
            e,
            Error::LevelMismatch {
                left: 2,
                right: 1,
                ..
            }
        ),
        "{e}"
    );
    assert!(e.to_string().contains("level 2") && e.to_string().contains("level 1"));
    let mut sc = ca.clone();
    sc.set_scale(ca.scale() * 2.0);
    assert!(matches!(
        k.eval.add(&ca, &sc),
        Err(Error::ScaleMismatch { .. })
    ));
    assert!(matches!(k.eval.rotate(&ca, 3), Err(Error::MissingKey(_))));
    let other = kit(small(10, vec![50, 40, 40], vec![56], 40.0), &[], false);
    assert!(matches!(
        other.eval.add(&ca, &ca),
        Err(Error::ParameterMismatch { .. })
    ));
    assert!(k.ecd.encode(&vec![0.0; 513], 0, 1e6).is_err());
    assert!(k.ecd.encode(&[f64::NAN], 0, 1e6).is_err());
    assert!(k.ecd.encode(&[1.0], 5, 1e6).is_err());
    let m = k.eval.mul(&ca, &ca).unwrap();
    assert!(k.eval.rotate(&m, 1).is_err());
}

/// The evaluator and everything it holds are shared between threads (issue #3): a compile-time
/// check, and two threads using one evaluator at once.
#[test]
fn evaluator_is_send_sync_and_usable_from_threads() {
    fn assert_send_sync<T: Send + Sync>() {}
    assert_send_sync::<Evaluator>();
    assert_send_sync::<Encoder>();
    assert_send_sync::<Ciphertext>();
    assert_send_sync::<Parameters>();
    assert_send_sync::<EvalKeySet>();
    let k = kit(small(10, vec![50, 40], vec![55], 40.0), &[1], false);
    let a = values(8, 11);
    let ca = k.encrypt(&a);
    let outs: Vec<Ciphertext> = std::thread::scope(|s| {
        let hs: Vec<_> = (0..2)
            .map(|_| {
                s.spawn(|| {
                    k.eval
                        .rotate(&k.eval.mul_relin(&ca, &ca).unwrap(), 1)
                        .unwrap()
                })
            })
            .collect();
        hs.into_iter().map(|h| h.join().unwrap()).collect()
    });
    assert_eq!(k.decrypt(&outs[0]).len(), k.decrypt(&outs[1]).len());
    let p = PrecisionStats::compare_complex(&k.decrypt(&outs[0]), &k.decrypt(&outs[1]));
    assert!(p.min_bits > 20.0, "{p}");
}

/// Task 2 (issue 16): `linear_transform_steps` returns typed errors for n1 = 0 and slots = 0
/// (it divided by zero before).
#[test]
fn linear_transform_steps_errors_are_typed() {
    for (n1, slots) in [(0, 8), (4, 0), (0, 0), (16, 8), (3, 6)] {
        let e = Evaluator::linear_transform_steps([0i64, 1, 5], n1, slots).unwrap_err();
        assert!(
            matches!(e, Error::OutOfRange { .. }),
            "n1 {n1} slots {slots}: {e}"
        );
    }
    assert_eq!(
        Evaluator::linear_transform_steps([0i64, 1, 5], 2, 8).unwrap(),
        vec![1, 4]
    );
}
