use super::*;
use crate::ckks::{Decryptor, Encoder, Encryptor, PrecisionStats};
use crate::math::Prng;
use crate::rlwe::PublicKey;

fn uniform(prng: &mut Prng, n: usize) -> Vec<Complex64> {
    (0..n)
        .map(|_| {
            let re = (prng.next_u64() as f64 / u64::MAX as f64) * 2.0 - 1.0;
            let im = (prng.next_u64() as f64 / u64::MAX as f64) * 2.0 - 1.0;
            Complex64::new(re, im)
        })
        .collect()
}

#[test]
fn bootstrap_full_slots_n12() {
    // N = 2^12 / 2048 complex slots / uniform in [-1,1]: precision and levels after.
    let config = BootstrapConfig::preset(BootstrapPreset::N12InsecureForTesting);
    let params = config.parameters().unwrap();
    let sk = SecretKey::generate(&params).unwrap();
    let keys = BootstrapKeys::generate(&sk, &config).unwrap();
    let BootstrapKeys {
        eval_keys,
        encapsulation,
    } = keys;
    let bs = Bootstrapper::new(&params, &config, Arc::new(eval_keys), encapsulation).unwrap();
    // The planners' estimate of the DFT plaintexts is the exact size of what was encoded.
    assert_eq!(
        Bootstrapper::plaintext_bytes_for(&params, &config).unwrap(),
        bs.plaintext_bytes()
    );
    let f = Bootstrapper::footprint(&params, &config).unwrap();
    assert_eq!(
        f.rotations,
        Bootstrapper::rotations(&params, &config).unwrap()
    );
    assert_eq!(f.plaintext_bytes, bs.plaintext_bytes());
    let ecd = Encoder::new(&params).unwrap();
    let enc = Encryptor::new(&params, PublicKey::generate(&sk).unwrap()).unwrap();
    let mut prng = Prng::from_seed([7; 32]);
    let z = uniform(&mut prng, params.slots());
    let ct = enc
        .encrypt(&ecd.encode_complex(&z, 0, params.default_scale()).unwrap())
        .unwrap();
    let out = bs.bootstrap(&ct).unwrap();
    assert_eq!(out.level(), config.levels_after());
    assert!((out.scale() / params.default_scale() - 1.0).abs() < 1e-9);
    let got = ecd
        .decode_complex(&Decryptor::new(&sk).decrypt(&out).unwrap())
        .unwrap();
    let s = PrecisionStats::compare_complex(&z, &got);
    println!("bootstrap N=2^12 full slots: {s:?}");
    assert!(s.mean_bits > 20.0, "{s:?}");
}

#[test]
fn refusals_are_typed() {
    let config = BootstrapConfig::preset(BootstrapPreset::N12InsecureForTesting);
    let params = config.parameters().unwrap();
    // Parameters whose chain is one level short of the layout.
    let mut short = config.clone();
    short.residual_bits.pop();
    let short_params = short.parameters().unwrap();
    assert!(matches!(
        config.check(&short_params),
        Err(Error::OutOfLevels { .. })
    ));
    let sk = SecretKey::generate(&params).unwrap();
    assert!(matches!(
        Bootstrapper::new(&short_params, &config, Arc::new(EvalKeySet::new()), None),
        Err(Error::OutOfLevels { .. })
    ));
    // Keys without the rotations: encoding succeeds, bootstrapping reports the missing key.
    let keys = BootstrapKeys::generate(&sk, &config).unwrap();
    let bs = Bootstrapper::new(
        &params,
        &config,
        Arc::new(EvalKeySet::new()),
        keys.encapsulation.clone(),
    )
    .unwrap();
    let ecd = Encoder::new(&params).unwrap();
    let enc = Encryptor::new(&params, PublicKey::generate(&sk).unwrap()).unwrap();
    let ct = enc
        .encrypt(&ecd.encode(&[0.5], 0, params.default_scale()).unwrap())
        .unwrap();
    assert!(matches!(bs.bootstrap(&ct), Err(Error::MissingKey(_))));
    // Configuration and keys disagree on encapsulation.
    assert!(matches!(
        Bootstrapper::new(&params, &config, Arc::new(EvalKeySet::new()), None),
        Err(Error::MissingKey(_))
    ));
    // A scale too large for the message ratio.
    let bs = Bootstrapper::new(
        &params,
        &config,
        Arc::new(keys.eval_keys),
        keys.encapsulation,
    )
    .unwrap();
    let big = enc
        .encrypt(&ecd.encode(&[0.5], 0, 2f64.powi(58)).unwrap())
        .unwrap();
    assert!(matches!(bs.bootstrap(&big), Err(Error::OutOfRange { .. })));
    // A ciphertext of other parameters.
    let other = Parameters::new(short.literal()).unwrap();
    let osk = SecretKey::generate(&other).unwrap();
    let oenc = Encryptor::new(&other, PublicKey::generate(&osk).unwrap()).unwrap();
    let oct = oenc
        .encrypt(
            &Encoder::new(&other)
                .unwrap()
                .encode(&[0.5], 0, other.default_scale())
                .unwrap(),
        )
        .unwrap();
    assert!(matches!(
        bs.bootstrap(&oct),
        Err(Error::ParameterMismatch { .. })
    ));
}

#[test]
fn bootstrap_sparse_slots_n12() {
    // N = 2^12: n = 64 and n = 512 = N/8 values repeated N/(2n) times; one EvalMod, shorter DFTs.
    for log_slots in [6u32, 9] {
        let mut config = BootstrapConfig::preset(BootstrapPreset::N12InsecureForTesting);
        config.log_slots = log_slots;
        let params = config.parameters().unwrap();
        let n = 1usize << log_slots;
        let sk = SecretKey::generate(&params).unwrap();
        let keys = BootstrapKeys::generate(&sk, &config).unwrap();
        let bs = Bootstrapper::new(
            &params,
            &config,
            Arc::new(keys.eval_keys),
            keys.encapsulation,
        )
        .unwrap();
        assert_eq!(
            Bootstrapper::plaintext_bytes_for(&params, &config).unwrap(),
            bs.plaintext_bytes()
        );
        let ecd = Encoder::new(&params).unwrap();
        let enc = Encryptor::new(&params, PublicKey::generate(&sk).unwrap()).unwrap();
        let mut prng = Prng::from_seed([11; 32]);
        let z = uniform(&mut prng, n);
        let full: Vec<Complex64> = (0..params.slots()).map(|t| z[t % n]).collect();
        let ct = enc
            .encrypt(
                &ecd.encode_complex(&full, 0, params.default_scale())
                    .unwrap(),
            )
            .unwrap();
        let out = bs.bootstrap(&ct).unwrap();
        assert_eq!(out.level(), config.levels_after());
        let got = ecd
            .decode_complex(&Decryptor::new(&sk).decrypt(&out).unwrap())
            .unwrap();
        let s = PrecisionStats::compare_complex(&full, &got);
        println!("bootstrap N=2^12, {n} sparse slots: {s}");
        assert!(s.mean_error_bits > 22.0 && s.min_bits > 18.0, "{s:?}");
    }
}

/// A provider that records every key fetch (a Galois key's with the level asked for) and
/// every announcement, and serves a Galois key's level-limited variant where one covers the
/// level asked for.
struct Recording {
    inner: EvalKeySet,
    variants: std::collections::BTreeMap<u64, Arc<crate::rlwe::KeySwitchKey>>,
    fetched: std::sync::Mutex<Vec<(KeyKind, Option<usize>)>>,
    announced: std::sync::Mutex<Vec<Vec<KeyUse>>>,
    variants_served: std::sync::atomic::AtomicUsize,
}

impl Recording {
    fn new(inner: EvalKeySet, variants: Vec<crate::rlwe::KeySwitchKey>) -> Self {
        Self {
            inner,
            variants: variants
                .into_iter()
                .filter_map(|k| match k.kind() {
                    KeyKind::Galois(g) => Some((g, Arc::new(k))),
                    _ => None,
                })
                .collect(),
            fetched: Default::default(),
            announced: Default::default(),
            variants_served: Default::default(),
        }
    }
}

impl EvalKeyProvider for Recording {
    fn relinearization_key(&self) -> Result<Arc<crate::rlwe::KeySwitchKey>> {
        self.switching_key(KeyKind::Relinearization)
    }
    fn galois_key(&self, g: u64) -> Result<Arc<crate::rlwe::KeySwitchKey>> {
        self.switching_key(KeyKind::Galois(g))
    }
    fn galois_key_at(&self, g: u64, level: usize) -> Result<Arc<crate::rlwe::KeySwitchKey>> {
        self.fetched
            .lock()
            .unwrap()
            .push((KeyKind::Galois(g), Some(level)));
        match self.variants.get(&g) {
            Some(v) if v.shape().q_limbs > level => {
                self.variants_served
                    .fetch_add(1, std::sync::atomic::Ordering::Relaxed);
                Ok(v.clone())
            }
            _ => self.inner.galois_key(g),
        }
    }
    fn galois_elements(&self) -> Vec<u64> {
        self.inner.galois_elements()
    }
    fn switching_key(&self, kind: KeyKind) -> Result<Arc<crate::rlwe::KeySwitchKey>> {
        self.fetched.lock().unwrap().push((kind, None));
        self.inner.switching_key(kind)
    }
    fn prefetch_uses(&self, uses: &[KeyUse]) {
        self.announced.lock().unwrap().push(uses.to_vec());
    }
}

/// `key_uses` is what a bootstrap fetches, in an order a store can follow: every fetch
/// (the relinearization key's repeats in EvalMod aside) matches an unmatched schedule entry of
/// the same key (and, for a Galois key, the same level) at most 64 entries (the store's
/// slack) behind the furthest matched one, and every entry is matched; the bootstrap
/// announces the schedule before its first fetch. `key_schedule` is its keys.
#[test]
fn key_schedule_is_the_fetch_order() {
    for log_slots in [6u32, 11] {
        let mut config = BootstrapConfig::preset(BootstrapPreset::N12InsecureForTesting);
        config.log_slots = log_slots;
        let params = config.parameters().unwrap();
        let sk = SecretKey::generate(&params).unwrap();
        let keys = BootstrapKeys::generate(&sk, &config).unwrap();
        let rec = Arc::new(Recording::new(keys.eval_keys, Vec::new()));
        let bs = Bootstrapper::new(&params, &config, rec.clone(), keys.encapsulation).unwrap();
        let schedule = bs.key_uses();
        assert_eq!(
            bs.key_schedule(),
            schedule.iter().map(|u| u.kind).collect::<Vec<_>>()
        );
        let enc = Encryptor::new(&params, PublicKey::generate(&sk).unwrap()).unwrap();
        let ecd = Encoder::new(&params).unwrap();
        let ct = enc
            .encrypt(&ecd.encode(&[0.5], 0, params.default_scale()).unwrap())
            .unwrap();
        bs.bootstrap(&ct).unwrap();
        assert_eq!(rec.announced.lock().unwrap().first(), Some(&schedule));
        let fetched = rec.fetched.lock().unwrap().clone();
        let mut matched = vec![false; schedule.len()];
        let (mut furthest, mut relin_seen) = (0usize, false);
        for (kind, level) in fetched {
            if kind == KeyKind::Relinearization {
                if relin_seen {
                    continue;
                }
                relin_seen = true;
            }
            let at = (0..schedule.len())
                .find(|&i| {
                    !matched[i]
                        && schedule[i].kind == kind
                        && level.is_none_or(|l| l == schedule[i].level)
                })
                .unwrap_or_else(|| {
                    panic!("{kind:?} at {level:?} fetched but not (or no more) in the schedule")
                });
            assert!(at + 64 >= furthest, "{kind:?} at {at}, furthest {furthest}");
            matched[at] = true;
            furthest = furthest.max(at);
        }
        assert!(matched.iter().all(|m| *m), "schedule entries never fetched");
        assert!(schedule.len() > 10, "{} keys", schedule.len());
    }
}

/// SlotToCoeff served by its level-limited variants (`slots_to_coeff_limited`): every one of
/// its rotations fetches the variant (fewer digits and limbs than the full key, which
/// CoeffToSlot still fetches), and the bootstrap keeps its precision.
#[test]
fn slots_to_coeff_runs_on_level_limited_keys() {
    let config = BootstrapConfig::preset(BootstrapPreset::N12InsecureForTesting);
    let params = config.parameters().unwrap();
    let sk = SecretKey::generate(&params).unwrap();
    let keys = BootstrapKeys::generate(&sk, &config).unwrap();
    let level = Bootstrapper::slots_to_coeff_level(&config);
    let variants = BootstrapKeys::slots_to_coeff_limited(&sk, &config).unwrap();
    let full = keys.eval_keys.bytes();
    for v in &variants {
        assert_eq!(v.shape().q_limbs, level + 1);
        let KeyKind::Galois(g) = v.kind() else {
            panic!("{:?}", v.kind())
        };
        let f = keys.eval_keys.galois_key(g).unwrap();
        assert!(v.shape().bytes() < f.shape().bytes());
    }
    let rec = Arc::new(Recording::new(keys.eval_keys, variants));
    let bs = Bootstrapper::new(&params, &config, rec.clone(), keys.encapsulation).unwrap();
    // Every SlotToCoeff use is at a level the variants cover; CoeffToSlot's are above it.
    let uses = bs.key_uses();
    let stc_uses = uses
        .iter()
        .filter(|u| matches!(u.kind, KeyKind::Galois(_)) && u.level <= level)
        .count();
    assert!(stc_uses > 0 && stc_uses < uses.len());
    let ecd = Encoder::new(&params).unwrap();
    let enc = Encryptor::new(&params, PublicKey::generate(&sk).unwrap()).unwrap();
    let mut prng = Prng::from_seed([9; 32]);
    let z = uniform(&mut prng, params.slots());
    let ct = enc
        .encrypt(&ecd.encode_complex(&z, 0, params.default_scale()).unwrap())
        .unwrap();
    let out = bs.bootstrap(&ct).unwrap();
    let served = rec
        .variants_served
        .load(std::sync::atomic::Ordering::Relaxed);
    let stc_fetches = rec
        .fetched
        .lock()
        .unwrap()
        .iter()
        .filter(|(k, l)| matches!(k, KeyKind::Galois(_)) && l.is_some_and(|l| l <= level))
        .count();
    assert_eq!(served, stc_fetches);
    assert!(
        served >= stc_uses,
        "{served} variants served, {stc_uses} uses"
    );
    let got = ecd
        .decode_complex(&Decryptor::new(&sk).decrypt(&out).unwrap())
        .unwrap();
    let s = PrecisionStats::compare_complex(&z, &got);
    println!("bootstrap N=2^12, SlotToCoeff on limited keys ({full} B of full keys): {s:?}");
    assert!(s.mean_bits > 20.0, "{s:?}");
}
