//! Tutorial 2 — rotations: Galois keys for exactly the steps needed, slot rotation,
//! conjugation, hoisted rotations (one decomposition for many steps), sum of slots, and a
//! baby-step giant-step matrix–vector product.
//!
//! Run: `cargo run --release -p he-core --example 02_rotations_and_hoisting`

use he_core::ckks::{Complex64, Decryptor, Encoder, Encryptor, Evaluator, PrecisionStats};
use he_core::rlwe::{EvalKeySet, Parameters, Preset, PublicKey, SecretKey};
use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::Instant;

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let params: Arc<Parameters> = Preset::N14Depth6.parameters()?;
    println!("parameters: {}", params.describe());
    let slots = params.slots();

    // The computation below needs these rotation steps and conjugation — and nothing else.
    let hoisted_steps = [1i64, 2, 3, 4, 5, 6, 7, 8];
    let diag_idx: Vec<i64> = (0..16).collect();
    let n1 = 4;
    let mut steps: Vec<i64> = hoisted_steps.to_vec();
    steps.extend(Evaluator::linear_transform_steps(
        diag_idx.iter().copied(),
        n1,
        slots,
    )?);
    steps.extend((0..12).map(|i| 1i64 << i)); // sum of 4096 slots
    steps.sort_unstable();
    steps.dedup();
    let sk = SecretKey::generate(&params)?;
    let t = Instant::now();
    let keys = EvalKeySet::generate(&sk, true, &steps, true)?;
    println!(
        "{} Galois keys + relin key: {:.1} MiB in {:.2?}",
        steps.len() + 1,
        keys.bytes() as f64 / (1 << 20) as f64,
        t.elapsed()
    );
    let eval = Evaluator::with_keys(&params, Arc::new(keys))?;
    let encoder = Encoder::new(&params)?;
    let encryptor = Encryptor::new(&params, PublicKey::generate(&sk)?)?;
    let decryptor = Decryptor::new(&sk);

    let z: Vec<Complex64> = (0..slots)
        .map(|i| Complex64::new((i as f64 * 0.01).sin(), (i as f64 * 0.02).cos()))
        .collect();
    let ct = encryptor.encrypt(&encoder.encode_complex(
        &z,
        params.max_level(),
        params.default_scale(),
    )?)?;
    let dec = |c| -> Result<Vec<Complex64>, he_core::Error> {
        encoder.decode_complex(&decryptor.decrypt(c)?)
    };

    // Rotation left by 3 and conjugation.
    let r = eval.rotate(&ct, 3)?;
    let want: Vec<Complex64> = (0..slots).map(|i| z[(i + 3) % slots]).collect();
    println!(
        "rotate(3):   {}",
        PrecisionStats::compare_complex(&want, &dec(&r)?)
    );
    let c = eval.conjugate(&ct)?;
    let want: Vec<Complex64> = z.iter().map(|v| v.conj()).collect();
    println!(
        "conjugate:   {}",
        PrecisionStats::compare_complex(&want, &dec(&c)?)
    );

    // Hoisted vs one-by-one rotations.
    let t = Instant::now();
    let plain: Vec<_> = hoisted_steps
        .iter()
        .map(|s| eval.rotate(&ct, *s))
        .collect::<Result<_, _>>()?;
    let t_plain = t.elapsed();
    let t = Instant::now();
    let hoisted = eval.rotate_hoisted(&ct, &hoisted_steps)?;
    let t_hoisted = t.elapsed();
    let worst = plain
        .iter()
        .zip(&hoisted)
        .map(|(p, h)| Ok(PrecisionStats::compare_complex(&dec(p)?, &dec(h)?).min_bits))
        .collect::<Result<Vec<f64>, he_core::Error>>()?
        .into_iter()
        .fold(f64::INFINITY, f64::min);
    println!("8 rotations: one by one {t_plain:.2?}, hoisted {t_hoisted:.2?}; hoisted agrees to >= {worst:.1} bits");

    // Sum of the first 4096 slots, replicated.
    let s = eval.sum_slots(&ct, 4096)?;
    let total: Complex64 = z[..4096].iter().sum();
    println!(
        "sum of 4096 slots: {:.6} (cleartext {:.6})",
        dec(&s)?[0],
        total
    );

    // y = M·z for a banded 16-diagonal matrix, by BSGS (diagonals encoded at scale q_l).
    let mut diags = BTreeMap::new();
    for k in &diag_idx {
        diags.insert(
            *k,
            (0..slots)
                .map(|i| Complex64::new(1.0 / (1.0 + (*k as f64) + (i % 5) as f64), 0.0))
                .collect::<Vec<_>>(),
        );
    }
    let t = Instant::now();
    let y = eval.linear_transform(&ct, &diags, Some(n1))?;
    let want: Vec<Complex64> = (0..slots)
        .map(|i| {
            diags
                .iter()
                .map(|(k, d)| d[i] * z[(i + *k as usize) % slots])
                .sum()
        })
        .collect();
    println!(
        "BSGS 16 diagonals in {:.2?}: {}",
        t.elapsed(),
        PrecisionStats::compare_complex(&want, &dec(&y)?)
    );
    Ok(())
}
