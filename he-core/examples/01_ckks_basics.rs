//! Tutorial 1 — CKKS basics: parameters from intent, keys, encode/encrypt, arithmetic with
//! scale and level management, decrypt/decode, and precision in bits.
//!
//! Run: `cargo run --release -p he-core --example 01_ckks_basics`
//!
//! We evaluate `f(x, y) = x·y + 0.5·x² - 1` on 8192 slots and compare with the cleartext.

use he_core::ckks::{Decryptor, Encoder, Encryptor, Evaluator, PrecisionStats};
use he_core::rlwe::{EvalKeySet, Parameters, ParametersIntent, PublicKey, SecretKey};
use std::sync::Arc;

fn main() -> Result<(), Box<dyn std::error::Error>> {
    // 1. Parameters from intent: depth 3, 40-bit scale, smallest 128-bit-secure ring degree.
    //    The library derives the prime chain and checks it against the HE standard's table.
    let params = Parameters::from_intent(&ParametersIntent::new(3, 40))?;
    println!("parameters: {}", params.describe());

    // 2. Keys. The secret key never leaves this process; it is zeroized on drop.
    let sk = SecretKey::generate(&params)?;
    let pk = PublicKey::generate(&sk)?;
    let keys = EvalKeySet::generate(&sk, true, &[], false)?; // relinearization key only
    println!(
        "evaluation keys: {:.1} MiB",
        keys.bytes() as f64 / (1 << 20) as f64
    );

    let encoder = Encoder::new(&params)?;
    let encryptor = Encryptor::new(&params, pk)?;
    let decryptor = Decryptor::new(&sk);
    let eval = Evaluator::with_keys(&params, Arc::new(keys))?;

    // 3. Encode and encrypt two vectors at the top level with the default scale 2^40.
    let n = params.slots();
    let x: Vec<f64> = (0..n).map(|i| (i as f64 / n as f64) * 2.0 - 1.0).collect();
    let y: Vec<f64> = (0..n).map(|i| ((i * 7) % n) as f64 / n as f64).collect();
    let (level, scale) = (params.max_level(), params.default_scale());
    let cx = encryptor.encrypt(&encoder.encode(&x, level, scale)?)?;
    let cy = encryptor.encrypt(&encoder.encode(&y, level, scale)?)?;
    println!(
        "fresh ciphertext: level {}, scale 2^{:.1}",
        cx.level(),
        cx.scale().log2()
    );

    // 4. x·y: multiply, relinearize, rescale (scale 2^80 -> ~2^40, level L -> L-1).
    let mut xy = eval.mul_relin(&cx, &cy)?;
    eval.rescale_assign(&mut xy)?;
    // 0.5·x²: square, relinearize, rescale; then the constant 0.5 (encoded at scale q_l, so the
    // next rescale restores the scale exactly).
    let mut x2 = eval.square_relin(&cx)?;
    eval.rescale_assign(&mut x2)?;
    eval.mul_const_assign(&mut x2, 0.5)?;
    eval.rescale_assign(&mut x2)?;
    // Levels must match before adding: bring x·y down to x²'s level.
    eval.drop_to_level(&mut xy, x2.level())?;
    // Both terms now have scale Δ²/q_L exactly (mul_const's q_l cancelled in its rescale), so
    // they add without any alignment; a mismatch would be a typed error naming both scales.
    let mut f = eval.add(&xy, &x2)?;
    eval.add_const_assign(&mut f, -1.0)?;
    println!(
        "result: level {}, scale 2^{:.3}",
        f.level(),
        f.scale().log2()
    );

    // 5. Decrypt, decode and measure precision against the cleartext.
    let got = encoder.decode(&decryptor.decrypt(&f)?)?;
    let want: Vec<f64> = x
        .iter()
        .zip(&y)
        .map(|(a, b)| a * b + 0.5 * a * a - 1.0)
        .collect();
    println!(
        "f(x,y) first slots: {:?}",
        &got[..4]
            .iter()
            .map(|v| format!("{v:.6}"))
            .collect::<Vec<_>>()
    );
    println!(
        "cleartext:          {:?}",
        &want[..4]
            .iter()
            .map(|v| format!("{v:.6}"))
            .collect::<Vec<_>>()
    );
    let stats = PrecisionStats::compare(&want, &got);
    println!("{stats}");
    if stats.mean_bits < 15.0 {
        return Err(format!("precision too low: {stats}").into());
    }
    Ok(())
}
