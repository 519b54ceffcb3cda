//! Tutorial 4 — bootstrapping: a computation deeper than the chain, by refreshing the
//! ciphertext whenever its levels run out.
//!
//! What happens, step by step (he_core::circuits::bootstrapping explains each):
//! 1. a bootstrappable parameter set is a chain with a layout: `q_0`, the levels left for your
//!    computation, then the levels SlotToCoeff, EvalMod and CoeffToSlot consume;
//! 2. key generation makes exactly the keys bootstrapping needs: relinearization, conjugation,
//!    the rotations of the two factorised DFTs, and the two keys of sparse-secret encapsulation;
//! 3. the bootstrapper pre-encodes the DFT factors once (at their levels, over Q·P);
//! 4. `bootstrap` takes a ciphertext at level 0 and returns it with `levels_after` levels and
//!    the default scale, exactly.
//!
//! Run: `cargo run --release -p he-core --example 04_bootstrapping` (N = 2^12, an insecure
//! toy chain, a few seconds), or with `-- --n16` for the 128-bit N = 2^16 preset (needs about
//! 14 GiB of memory and a minute of key generation).

use he_core::circuits::bootstrapping::{
    BootstrapConfig, BootstrapKeys, BootstrapPreset, Bootstrapper,
};
use he_core::ckks::{Decryptor, Encoder, Encryptor, PrecisionStats};
use he_core::rlwe::{PublicKey, SecretKey};
use std::sync::Arc;
use std::time::Instant;

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let preset = if std::env::args().any(|a| a == "--n16") {
        BootstrapPreset::N16Levels9
    } else {
        BootstrapPreset::N12InsecureForTesting
    };
    // 1. The chain and its layout.
    let config = BootstrapConfig::preset(preset);
    let params = config.parameters()?;
    println!("parameters: {}", params.describe());
    println!(
        "layout: {} levels after bootstrapping; bootstrapping consumes {} (SlotToCoeff {}, EvalMod {}, CoeffToSlot {})",
        config.levels_after(),
        config.depth(),
        config.slots_to_coeff.len(),
        config.eval_mod.depth(),
        config.coeff_to_slot.len()
    );

    // 2. Keys: the client makes them; only the evaluation keys go to the server.
    let sk = SecretKey::generate(&params)?;
    let t = Instant::now();
    let keys = BootstrapKeys::generate(&sk, &config)?;
    println!(
        "keys: {:.1} MiB in {:.1} s ({} rotations + conjugation + relinearization + encapsulation)",
        keys.bytes() as f64 / (1 << 20) as f64,
        t.elapsed().as_secs_f64(),
        Bootstrapper::rotations(&params, &config)?.len()
    );

    // 3. The bootstrapper (server side): DFT factors encoded once.
    let BootstrapKeys {
        eval_keys,
        encapsulation,
    } = keys;
    let bs = Bootstrapper::new(&params, &config, Arc::new(eval_keys), encapsulation)?;
    let eval = bs.evaluator();

    // 4. A computation three times deeper than the levels left: x ← x² − 0.5, 3·L times.
    let ecd = Encoder::new(&params)?;
    let enc = Encryptor::new(&params, PublicKey::generate(&sk)?)?;
    let dec = Decryptor::new(&sk);
    let x0: Vec<f64> = (0..params.slots())
        .map(|i| ((i as f64) * 0.01).sin() * 0.9)
        .collect();
    let mut want = x0.clone();
    let mut ct = enc.encrypt(&ecd.encode(&x0, config.levels_after(), params.default_scale())?)?;
    let steps = 3 * config.levels_after();
    for step in 0..steps {
        if ct.level() == 0 {
            let t = Instant::now();
            ct = bs.bootstrap(&ct)?;
            let got = ecd.decode(&dec.decrypt(&ct)?)?;
            let p = PrecisionStats::compare(&want, &got);
            println!(
                "  bootstrapped before step {step} in {:.2} s: level {}, precision {:.1} bits mean, {:.1} min",
                t.elapsed().as_secs_f64(),
                ct.level(),
                p.mean_bits,
                p.min_bits
            );
        }
        ct = eval.square_relin(&ct)?;
        eval.rescale_assign(&mut ct)?;
        eval.add_const_assign(&mut ct, -0.5)?;
        want.iter_mut().for_each(|w| *w = *w * *w - 0.5);
    }
    let got = ecd.decode(&dec.decrypt(&ct)?)?;
    let p = PrecisionStats::compare(&want, &got);
    println!(
        "after {steps} squarings (depth {steps} on a chain with {} levels for computation): {:.1} bits mean, {:.1} min",
        config.levels_after(),
        p.mean_bits,
        p.min_bits
    );
    if p.mean_bits < 15.0 {
        return Err(format!("precision too low: {p:?}").into());
    }
    Ok(())
}
