//! Per-stage CPU-time breakdown of one hybrid key switch (diagnostics for optimisation):
//! INTT of the input, ModUp of every digit, inner product with the key, ModDown.
//!
//! Usage: ks-breakdown [--logn 14] [--alpha 1] [--special K] [--pbits 60] [--reps 20]

/// Minimum CPU time of `reps` runs (robust on a machine shared with other jobs: contention
/// only ever adds time).
fn median_cpu_us(reps: usize, mut f: impl FnMut()) -> f64 {
    f();
    (0..reps.max(1))
        .map(|_| {
            let t = he_bench::process_cpu_us();
            f();
            he_bench::process_cpu_us() - t
        })
        .fold(f64::INFINITY, f64::min)
}
use he_core::math::Prng;
use he_core::ring::Eval;
use he_core::rlwe::keyswitch::{decompose, key_switch_decomposed};
use he_core::rlwe::{
    KeyGenerator, Parameters, ParametersLiteral, SecretDistribution, SecretKey, Security,
};

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let args: Vec<String> = std::env::args().collect();
    let get = |k: &str, d: usize| {
        args.iter()
            .position(|a| a == k)
            .and_then(|i| args.get(i + 1))
            .and_then(|v| v.parse().ok())
            .unwrap_or(d)
    };
    let special = get("--special", get("--alpha", 1));
    let (logn, alpha, reps) = (
        get("--logn", 14) as u32,
        get("--alpha", 1),
        get("--reps", 20),
    );
    let depth = match logn {
        15 => 14,
        16 => 30,
        _ => 6,
    };
    let params = Parameters::new(ParametersLiteral {
        log_n: logn,
        log_q: [vec![60], vec![40; depth]].concat(),
        log_p: vec![get("--pbits", 60) as u32; special],
        alpha: Some(alpha),
        log_scale: 40.0,
        secret: SecretDistribution::UniformTernary,
        security: Security::Bits128,
    })?;
    println!("{}", params.describe());
    let sk = SecretKey::generate(&params)?;
    let key = KeyGenerator::new(&sk).relinearization_key()?;
    let rq = params.ring_q();
    let d = rq.uniform::<Eval>(&mut Prng::from_seed([1; 32]), rq.max_limbs())?;
    let n = params.degree();
    let t_ntt = median_cpu_us(reps, || {
        let mut x = d.limb(1).map(<[u64]>::to_vec).unwrap_or_default();
        if let Some(p) = rq.ntt(1) {
            p.forward_unchecked(&mut x);
        }
    });
    let t_intt = median_cpu_us(reps, || drop(rq.to_coeff(d.clone())));
    let t_up = median_cpu_us(reps, || drop(decompose(&params, &d)));
    let dec = decompose(&params, &d)?;
    let t_all = median_cpu_us(reps, || {
        drop(key_switch_decomposed(&params, &dec, &key, None))
    });
    let ks = params.key_switch_basis();
    let ql = params.q().len();
    let parts = (0..dec.digits.len())
        .map(|j| Ok([key.part(j, 0, ql)?, key.part(j, 1, ql)?]))
        .collect::<he_core::Result<Vec<_>>>()?;
    let t_ip = median_cpu_us(reps, || drop(ks.inner_product(&dec.digits, &parts, None)));
    let [acc, _] = ks.inner_product(&dec.digits, &parts, None)?;
    let t_down = median_cpu_us(reps, || drop(ks.mod_down(acc.clone())));
    let t_clone = median_cpu_us(reps, || drop(acc.clone()));
    let digits = ks.digits(params.max_level());
    let (l1, k) = (params.q().len(), params.p().len());
    let ntts = l1 + digits * (l1 + k) - l1 + 2 * (k + l1);
    // Base conversion alone: the first digit's ModUp conversion.
    {
        use he_core::math::{BaseConverter, RnsBasis};
        let q = params.q();
        let a = alpha.min(q.len());
        let from = RnsBasis::new(&q[..a])?;
        let to: Vec<_> = rq.moduli()[a..]
            .iter()
            .chain(params.ring_p().moduli())
            .copied()
            .collect();
        let conv = BaseConverter::new(&from, &to)?;
        let input = &d.as_slice()[..a * n];
        let mut out = vec![0u64; to.len() * n];
        let t = median_cpu_us(reps, || {
            conv.convert_exact(input, &mut out, n).unwrap_or(())
        });
        let terms = (a * to.len() * n) as f64;
        println!(
            "ModUp conversion {a}->{}: {t:.1} us = {:.2} ns/term",
            to.len(),
            t * 1e3 / terms
        );
    }
    println!(
        "one forward NTT (N=2^{logn}): {t_ntt:.1} us = {:.3} ns/butterfly",
        t_ntt * 1e3 / ((n / 2) as f64 * logn as f64)
    );
    println!("INTT all limbs:               {t_intt:.1} us");
    println!("decompose (INTT + ModUp):     {t_up:.1} us");
    println!("inner product + ModDown:      {t_all:.1} us");
    println!("  inner product (2 comps):    {t_ip:.1} us");
    println!("  one ModDown:                {:.1} us", t_down - t_clone);
    println!(
        "total NTTs per key switch:    {ntts} (= {:.1} us at the measured NTT speed)",
        ntts as f64 * t_ntt
    );
    Ok(())
}
