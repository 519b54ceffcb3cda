//! Tutorial 3 — serialization: save and load parameters, keys and ciphertexts one object at a
//! time (versioned header, checksum, parameter hash), seeded forms at half size, and the typed
//! errors a damaged or mismatched file gives.
//!
//! Run: `cargo run --release -p he-core --example 03_serialization`

use he_core::ckks::{Ciphertext, Decryptor, Encoder, Evaluator};
use he_core::rlwe::{
    EvalKeySet, KeyGenerator, KeySwitchKey, Parameters, Preset, PublicKey, SecretKey,
};
use he_core::serialize::{secret_key_from_bytes, secret_key_to_bytes, Serializable};
use std::sync::Arc;

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let dir = std::env::temp_dir().join(format!("home-tutorial-{}", std::process::id()));
    std::fs::create_dir_all(&dir)?;
    let params = Preset::N14Depth6.parameters()?;
    let sk = SecretKey::generate(&params)?;

    // The data owner: parameters, public key, relinearization key, a seeded ciphertext.
    std::fs::write(dir.join("params.bin"), params.to_bytes())?;
    std::fs::write(dir.join("pk.bin"), PublicKey::generate(&sk)?.to_bytes())?;
    let rlk = KeyGenerator::new(&sk).relinearization_key()?;
    std::fs::write(dir.join("rlk.bin"), rlk.to_bytes())?;
    let encoder = Encoder::new(&params)?;
    let pt = encoder.encode(
        &[1.5, -2.0, 3.25],
        params.max_level(),
        params.default_scale(),
    )?;
    let ct = Decryptor::new(&sk).encrypt_symmetric(&pt)?; // seeded: c1 is 32 bytes
    std::fs::write(dir.join("x.ct"), ct.to_bytes())?;
    // The secret key is written only through an explicitly named function.
    std::fs::write(dir.join("sk.bin"), &*secret_key_to_bytes(&sk))?;
    for f in ["params.bin", "pk.bin", "rlk.bin", "x.ct", "sk.bin"] {
        println!(
            "{f:>10}: {:>9} bytes",
            std::fs::metadata(dir.join(f))?.len()
        );
    }
    // Any evaluation drops the seed; the size of the unseeded form:
    let unseeded = Evaluator::new(&params)?.add(&ct, &ct)?.to_bytes().len();
    println!(
        "seeded ciphertext is {:.0}% of the unseeded form",
        100.0 * ct.to_bytes().len() as f64 / unseeded as f64
    );

    // The server: loads everything against the parameters and computes x².
    let p2: Arc<Parameters> = Parameters::from_bytes(&std::fs::read(dir.join("params.bin"))?)?;
    let mut keys = EvalKeySet::new();
    keys.insert(KeySwitchKey::from_bytes(
        &p2,
        &std::fs::read(dir.join("rlk.bin"))?,
    )?);
    let x = Ciphertext::from_bytes(&p2, &std::fs::read(dir.join("x.ct"))?)?;
    let eval = Evaluator::with_keys(&p2, Arc::new(keys))?;
    let mut y = eval.square_relin(&x)?;
    eval.rescale_assign(&mut y)?;
    std::fs::write(dir.join("y.ct"), y.to_bytes())?;

    // The data owner decrypts.
    let sk2 = secret_key_from_bytes(&p2, &std::fs::read(dir.join("sk.bin"))?)?;
    let y = Ciphertext::from_bytes(&p2, &std::fs::read(dir.join("y.ct"))?)?;
    let out = Encoder::new(&p2)?.decode(&Decryptor::new(&sk2).decrypt(&y)?)?;
    println!("x² = {:.6} {:.6} {:.6}", out[0], out[1], out[2]);

    // What damaged or mismatched input gives: typed errors, never a panic.
    // Each damaged input must be refused; accepting one would be a bug worth failing for.
    let refused = |r: Result<Ciphertext, he_core::Error>| -> Result<String, String> {
        match r {
            Ok(_) => Err("damaged input was accepted".into()),
            Err(e) => Ok(e.to_string()),
        }
    };
    let mut bytes = std::fs::read(dir.join("x.ct"))?;
    let last = bytes.len() - 1;
    bytes[last] ^= 1;
    println!(
        "corrupted:       {}",
        refused(Ciphertext::from_bytes(&p2, &bytes))?
    );
    println!(
        "truncated:       {}",
        refused(Ciphertext::from_bytes(&p2, &bytes[..100]))?
    );
    let other = Preset::N15Depth14.parameters()?;
    println!(
        "wrong params:    {}",
        refused(Ciphertext::from_bytes(
            &other,
            &std::fs::read(dir.join("x.ct"))?
        ))?
    );
    println!(
        "wrong type:      {}",
        refused(Ciphertext::from_bytes(
            &p2,
            &std::fs::read(dir.join("rlk.bin"))?
        ))?
    );
    std::fs::remove_dir_all(&dir)?;
    Ok(())
}
