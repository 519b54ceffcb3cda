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
