use super::*;
use crate::ckks::{Decryptor, Encryptor, Evaluator, PrecisionStats};
use crate::math::Prng;
use crate::rlwe::{
    EvalKeySet, KeyGenerator, Parameters, ParametersLiteral, SecretDistribution, SecretKey,
    Security,
};
use std::sync::Arc;

struct Ctx {
    params: Arc<Parameters>,
    sk: SecretKey,
    enc: Encryptor,
    ecd: Encoder,
}

fn ctx(log_n: u32) -> Ctx {
    let params = Parameters::new(ParametersLiteral {
        log_n,
        log_q: vec![55, 45, 45],
        log_p: vec![60, 60],
        alpha: Some(2),
        log_scale: 45.0,
        secret: SecretDistribution::UniformTernary,
        security: Security::InsecureForTesting,
    })
    .unwrap();
    let sk = SecretKey::generate(&params).unwrap();
    let enc = Encryptor::new(&params, crate::rlwe::PublicKey::generate(&sk).unwrap()).unwrap();
    let ecd = Encoder::new(&params).unwrap();
    Ctx {
        params,
        sk,
        enc,
        ecd,
    }
}

fn random_vec(prng: &mut Prng, n: usize) -> Vec<Complex64> {
    (0..n)
        .map(|_| {
            let re = (prng.next_u64() as f64 / u64::MAX as f64) * 2.0 - 1.0;
            let im = (prng.next_u64() as f64 / u64::MAX as f64) * 2.0 - 1.0;
            Complex64::new(re, im)
        })
        .collect()
}

fn run(c: &Ctx, diags: &Diagonals, baby: BabySteps) -> PrecisionStats {
    let n = diags.slots();
    let full = c.params.slots();
    let level = c.params.max_level();
    let lt =
        LinearTransform::encode(&c.ecd, diags, level, c.params.q()[level] as f64, baby).unwrap();
    let mut keys = EvalKeySet::new();
    for k in KeyGenerator::new(&c.sk)
        .rotation_keys(&lt.rotations(), false)
        .unwrap()
    {
        keys.insert(k);
    }
    let eval = Evaluator::with_keys(&c.params, Arc::new(keys)).unwrap();
    let mut prng = Prng::from_seed([9; 32]);
    let z = random_vec(&mut prng, n);
    // Sparse packing: the n values repeat over all N/2 slots.
    let zfull: Vec<Complex64> = (0..full).map(|t| z[t % n]).collect();
    let ct = c
        .enc
        .encrypt(
            &c.ecd
                .encode_complex(&zfull, level, c.params.default_scale())
                .unwrap(),
        )
        .unwrap();
    let mut y = eval.apply_linear_transform(&ct, &lt).unwrap();
    assert_eq!(y.level(), level);
    eval.rescale_assign(&mut y).unwrap();
    assert!((y.scale() / c.params.default_scale() - 1.0).abs() < 1e-12);
    let got = c
        .ecd
        .decode_complex(&Decryptor::new(&c.sk).decrypt(&y).unwrap())
        .unwrap();
    let want = diags.apply_clear(&z).unwrap();
    let wantfull: Vec<Complex64> = (0..full).map(|t| want[t % n]).collect();
    PrecisionStats::compare_complex(&wantfull, &got)
}

#[test]
fn dense_matrix_matches_cleartext_product() {
    // N = 2^10 / 512 slots / 3 limbs: a dense random 64 x 64 matrix (sparse packing) and a
    // banded 512 x 512 one (full slots), each against the cleartext product.
    let c = ctx(10);
    let mut prng = Prng::from_seed([3; 32]);
    let m: Vec<Vec<Complex64>> = (0..64).map(|_| random_vec(&mut prng, 64)).collect();
    let d = Diagonals::from_matrix(&m).unwrap();
    assert_eq!(d.len(), 64);
    let s = run(&c, &d, BabySteps::Auto);
    println!("dense 64x64: {s:?}");
    // Entries of M·z are sums of 64 products of magnitude <= 2: expect ~20+ bits.
    assert!(s.mean_bits > 22.0 && s.min_bits > 18.0, "{s:?}");

    let full = c.params.slots();
    let mut d = Diagonals::new(full).unwrap();
    for k in [-5i64, -1, 0, 1, 2, 7, 100, 300] {
        d.insert(k, random_vec(&mut prng, full)).unwrap();
    }
    for baby in [BabySteps::Auto, BabySteps::Fixed(1), BabySteps::Fixed(8)] {
        let s = run(&c, &d, baby);
        println!("banded 512 {baby:?}: {s:?}");
        assert!(s.mean_bits > 26.0 && s.min_bits > 22.0, "{s:?}");
    }
}

#[test]
fn composition_matches_product_of_matrices() {
    let mut prng = Prng::from_seed([4; 32]);
    let a: Vec<Vec<Complex64>> = (0..16).map(|_| random_vec(&mut prng, 16)).collect();
    let b: Vec<Vec<Complex64>> = (0..16).map(|_| random_vec(&mut prng, 16)).collect();
    let (da, db) = (
        Diagonals::from_matrix(&a).unwrap(),
        Diagonals::from_matrix(&b).unwrap(),
    );
    let ab = da.compose(&db).unwrap();
    let z = random_vec(&mut prng, 16);
    let want = da.apply_clear(&db.apply_clear(&z).unwrap()).unwrap();
    let got = ab.apply_clear(&z).unwrap();
    for (w, g) in want.iter().zip(&got) {
        assert!((w - g).norm() < 1e-12);
    }
}

#[test]
fn refusals_are_typed() {
    let c = ctx(10);
    let n = c.params.slots();
    let mut d = Diagonals::new(n).unwrap();
    assert!(matches!(
        d.insert(1, vec![Complex64::new(1.0, 0.0); 3]),
        Err(Error::LengthMismatch { .. })
    ));
    assert!(Diagonals::new(12).is_err());
    assert!(LinearTransform::encode(&c.ecd, &d, 1, 1e10, BabySteps::Auto).is_err());
    d.insert(1, vec![Complex64::new(1.0, 0.0); n]).unwrap();
    let lt = LinearTransform::encode(&c.ecd, &d, 1, 1e10, BabySteps::Auto).unwrap();
    assert!(matches!(
        LinearTransform::encode(&c.ecd, &d, 1, 1e10, BabySteps::Fixed(3)),
        Err(Error::OutOfRange { .. })
    ));
    let ct = c
        .enc
        .encrypt(&c.ecd.encode(&[1.0], 2, c.params.default_scale()).unwrap())
        .unwrap();
    // Wrong level.
    let eval = Evaluator::with_keys(&c.params, Arc::new(EvalKeySet::new())).unwrap();
    assert!(matches!(
        eval.apply_linear_transform(&ct, &lt),
        Err(Error::LevelMismatch { .. })
    ));
    // Missing rotation key.
    let mut ct1 = ct.clone();
    eval.drop_to_level(&mut ct1, 1).unwrap();
    assert!(matches!(
        eval.apply_linear_transform(&ct1, &lt),
        Err(Error::MissingKey(_))
    ));
}

#[test]
fn serialization_round_trip_and_hostile_bytes() {
    use crate::serialize::Serializable;
    let c = ctx(10);
    let n = c.params.slots();
    let mut prng = Prng::from_seed([5; 32]);
    let mut d = Diagonals::new(n).unwrap();
    for k in [0i64, 1, 9, -3] {
        d.insert(k, random_vec(&mut prng, n)).unwrap();
    }
    let lt = LinearTransform::encode(&c.ecd, &d, 1, 2f64.powi(45), BabySteps::Auto).unwrap();
    let bytes = lt.to_bytes();
    let back = LinearTransform::from_bytes(&c.params, &bytes).unwrap();
    assert_eq!(back, lt);
    assert_eq!(back.rotations(), lt.rotations());
    // Truncated, bit-flipped, other parameters: typed errors, no panic.
    assert!(LinearTransform::from_bytes(&c.params, &bytes[..bytes.len() - 9]).is_err());
    let mut flipped = bytes.clone();
    flipped[100] ^= 4;
    assert!(LinearTransform::from_bytes(&c.params, &flipped).is_err());
    let other = ctx(11);
    assert!(matches!(
        LinearTransform::from_bytes(&other.params, &bytes),
        Err(Error::ParameterMismatch { .. })
    ));
}

#[test]
fn sum_of_transforms_matches_the_sum_of_products() {
    // Two 32x32 blocks on two ciphertexts (sparse packing), summed with shared giant steps.
    let c = ctx(10);
    let n = 32;
    let full = c.params.slots();
    let level = c.params.max_level();
    let mut prng = Prng::from_seed([8; 32]);
    let ma: Vec<Vec<Complex64>> = (0..n).map(|_| random_vec(&mut prng, n)).collect();
    let mb: Vec<Vec<Complex64>> = (0..n).map(|_| random_vec(&mut prng, n)).collect();
    let (da, db) = (
        Diagonals::from_matrix(&ma).unwrap(),
        Diagonals::from_matrix(&mb).unwrap(),
    );
    let qs = c.params.q()[level] as f64;
    let lta = LinearTransform::encode(&c.ecd, &da, level, qs, BabySteps::Fixed(8)).unwrap();
    let ltb = LinearTransform::encode(&c.ecd, &db, level, qs, BabySteps::Fixed(8)).unwrap();
    let mut rots = lta.rotations();
    rots.extend(ltb.rotations());
    let mut keys = EvalKeySet::new();
    for k in KeyGenerator::new(&c.sk)
        .rotation_keys(&rots, false)
        .unwrap()
    {
        keys.insert(k);
    }
    let eval = Evaluator::with_keys(&c.params, Arc::new(keys)).unwrap();
    let (za, zb) = (random_vec(&mut prng, n), random_vec(&mut prng, n));
    let enc = |z: &[Complex64]| {
        let zf: Vec<Complex64> = (0..full).map(|t| z[t % n]).collect();
        c.enc
            .encrypt(
                &c.ecd
                    .encode_complex(&zf, level, c.params.default_scale())
                    .unwrap(),
            )
            .unwrap()
    };
    let (ca, cb) = (enc(&za), enc(&zb));
    let mut y = eval
        .apply_linear_transform_sum(&[(&ca, &lta), (&cb, &ltb)])
        .unwrap();
    eval.rescale_assign(&mut y).unwrap();
    let got = c
        .ecd
        .decode_complex(&Decryptor::new(&c.sk).decrypt(&y).unwrap())
        .unwrap();
    let (ya, yb) = (da.apply_clear(&za).unwrap(), db.apply_clear(&zb).unwrap());
    let want: Vec<Complex64> = (0..full).map(|t| ya[t % n] + yb[t % n]).collect();
    let s = PrecisionStats::compare_complex(&want, &got);
    assert!(s.mean_bits > 25.0, "{s:?}");
    // Mismatched baby steps are refused.
    let ltc = LinearTransform::encode(&c.ecd, &db, level, qs, BabySteps::Fixed(4)).unwrap();
    assert!(eval
        .apply_linear_transform_sum(&[(&ca, &lta), (&cb, &ltc)])
        .is_err());
    assert!(eval.apply_linear_transform_sum(&[]).is_err());
}

/// Streaming a two-input sum part by part, over random splits of the giant steps, gives bit
/// for bit the whole sum when each giant step's terms come in one part, and the same values
/// (within the rounding of one more key switch) when the inputs are split differently; a part
/// at another level or `n1` is refused, as an empty stream is.
#[test]
fn streamed_parts_equal_the_whole_sum() {
    use proptest::prelude::*;
    use proptest::test_runner::{Config, TestRunner};
    let c = ctx(10);
    let n = 64;
    let full = c.params.slots();
    let level = c.params.max_level();
    let mut prng = Prng::from_seed([5; 32]);
    let ma: Vec<Vec<Complex64>> = (0..n).map(|_| random_vec(&mut prng, n)).collect();
    let mb: Vec<Vec<Complex64>> = (0..n).map(|_| random_vec(&mut prng, n)).collect();
    let (da, db) = (
        Diagonals::from_matrix(&ma).unwrap(),
        Diagonals::from_matrix(&mb).unwrap(),
    );
    let qs = c.params.q()[level] as f64;
    let baby = BabySteps::Fixed(8);
    let lta = LinearTransform::encode(&c.ecd, &da, level, qs, baby).unwrap();
    let ltb = LinearTransform::encode(&c.ecd, &db, level, qs, baby).unwrap();
    let mut keys = EvalKeySet::new();
    for k in KeyGenerator::new(&c.sk)
        .rotation_keys(&rotations_for(&da, baby).unwrap(), false)
        .unwrap()
    {
        keys.insert(k);
    }
    let eval = Evaluator::with_keys(&c.params, Arc::new(keys)).unwrap();
    let enc = |z: &[Complex64]| {
        let zf: Vec<Complex64> = (0..full).map(|t| z[t % n]).collect();
        c.enc
            .encrypt(
                &c.ecd
                    .encode_complex(&zf, level, c.params.default_scale())
                    .unwrap(),
            )
            .unwrap()
    };
    let (ca, cb) = (
        enc(&random_vec(&mut prng, n)),
        enc(&random_vec(&mut prng, n)),
    );
    let whole = eval
        .apply_linear_transform_sum(&[(&ca, &lta), (&cb, &ltb)])
        .unwrap();
    let giants = giant_steps_for(&da, baby).unwrap();
    assert_eq!(giants, (0..n / 8).collect::<Vec<_>>());
    let g = giants.len();
    let mut runner = TestRunner::new(Config::with_cases(6));
    runner
        .run(
            &(1..=g, prop_oneof![Just(0usize), 1..=g], any::<bool>()),
            |(sa, sb, reversed)| {
                // Input a in parts of sa giant steps, input b in parts of sb (0: as a), in
                // either order.
                let sb = if sb == 0 { sa } else { sb };
                let mut parts: Vec<Vec<(usize, std::ops::Range<usize>)>> = Vec::new();
                for (b, step) in [(0, sa), (1, sb)] {
                    for (k, start) in (0..g).step_by(step).enumerate() {
                        if parts.len() <= k {
                            parts.push(Vec::new());
                        }
                        parts[k].push((b, start..(start + step).min(g)));
                    }
                }
                if reversed {
                    parts.reverse();
                }
                let fetched = std::sync::atomic::AtomicUsize::new(0);
                let prefetched = std::sync::Mutex::new(Vec::new());
                let got = eval
                    .apply_linear_transform_streamed(
                        &[&ca, &cb],
                        parts.len(),
                        &|k| {
                            fetched.fetch_add(1, std::sync::atomic::Ordering::SeqCst);
                            let mut out = Vec::new();
                            for (b, r) in &parts[k] {
                                let d = if *b == 0 { &da } else { &db };
                                if let Some(lt) = LinearTransform::encode_giant_steps(
                                    &c.ecd,
                                    d,
                                    level,
                                    qs,
                                    baby,
                                    r.clone(),
                                )? {
                                    out.push((*b, Arc::new(lt)));
                                }
                            }
                            Ok(out)
                        },
                        &|k| prefetched.lock().unwrap().push(k),
                    )
                    .unwrap();
                if sa == sb {
                    prop_assert_eq!(&got, &whole);
                } else {
                    let dec = Decryptor::new(&c.sk);
                    let (g1, w1) = (
                        c.ecd.decode_complex(&dec.decrypt(&got).unwrap()).unwrap(),
                        c.ecd.decode_complex(&dec.decrypt(&whole).unwrap()).unwrap(),
                    );
                    let s = PrecisionStats::compare_complex(&w1, &g1);
                    // Only key-switching noise tells them apart.
                    prop_assert!(s.min_bits > 30.0, "{:?}", s);
                }
                prop_assert_eq!(
                    fetched.load(std::sync::atomic::Ordering::SeqCst),
                    parts.len()
                );
                prop_assert_eq!(
                    prefetched.into_inner().unwrap(),
                    (1..parts.len()).collect::<Vec<_>>()
                );
                Ok(())
            },
        )
        .unwrap();
    // A part at another n1 or another level is refused; so is a stream with no diagonal.
    let other_n1 = LinearTransform::encode(&c.ecd, &db, level, qs, BabySteps::Fixed(4)).unwrap();
    let other_level =
        LinearTransform::encode(&c.ecd, &db, level - 1, c.params.q()[level - 1] as f64, baby)
            .unwrap();
    for bad in [other_n1, other_level] {
        let bad = Arc::new(bad);
        let r = eval.apply_linear_transform_streamed(
            &[&ca, &cb],
            2,
            &|k| {
                Ok(if k == 0 {
                    vec![(0, Arc::new(lta.clone()))]
                } else {
                    vec![(1, bad.clone())]
                })
            },
            &|_| {},
        );
        assert!(r.is_err());
    }
    assert!(eval
        .apply_linear_transform_streamed(&[&ca], 1, &|_| Ok(Vec::new()), &|_| {})
        .is_err());
    // A term naming an input that is not there is refused.
    assert!(eval
        .apply_linear_transform_streamed(
            &[&ca],
            1,
            &|_| Ok(vec![(3, Arc::new(lta.clone()))]),
            &|_| {}
        )
        .is_err());
}
