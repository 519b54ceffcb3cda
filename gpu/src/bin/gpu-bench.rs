//! Times every he-gpu kernel with CUDA events (warm-up, median of many runs), compares the
//! achieved memory throughput with the device's HBM peak, and times the same operation on the
//! CPU path (he-core) for a speed-up.
//!
//! ```text
//! cargo run --release -p he-gpu --bin gpu-bench -- [--device 0] [--log-n 12,13,...,17]
//!     [--limbs 40] [--polys 2] [--runs 50] [--cpu-runs 5] [--no-cpu]
//! ```
//!
//! Traffic model ("min bytes"): the words each operation must read and write at least once
//! (NTT: read + write the batch = 16 B/word, although N > 2^12 takes two passes; add/mul:
//! 24 B/word; multiply-accumulate: 32 B/word; base conversion: inputs + outputs; key-switching
//! inner product: digits + key parts + accumulator read and write). "% peak" is the HBM time
//! bound for those bytes divided by the measured time.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use he_core::math::primes::ntt_primes;
use he_core::math::{BaseConverter, Modulus, Prng, RnsBasis};
use he_core::ring::{Coeff, Eval, Poly, RingContext};
use he_core::rlwe::KeyShape;
use he_gpu::{
    key_switch_inner_product, DeviceBaseConverter, DeviceKeySwitchKey, DevicePoly, DeviceRing,
    GpuContext, Result,
};
use std::time::Instant;

struct Opts {
    device: usize,
    log_n: Vec<u32>,
    limbs: usize,
    polys: usize,
    runs: usize,
    cpu_runs: usize,
    cpu: bool,
}

fn parse() -> std::result::Result<Opts, String> {
    let mut o = Opts {
        device: 0,
        log_n: (12..=17).collect(),
        limbs: 40,
        polys: 2,
        runs: 50,
        cpu_runs: 5,
        cpu: true,
    };
    let mut args = std::env::args().skip(1);
    while let Some(a) = args.next() {
        let mut val = |name: &str| args.next().ok_or(format!("{name} needs a value"));
        let num = |s: String| s.parse::<usize>().map_err(|e| format!("{s}: {e}"));
        match a.as_str() {
            "--device" => o.device = num(val("--device")?)?,
            "--limbs" => o.limbs = num(val("--limbs")?)?,
            "--polys" => o.polys = num(val("--polys")?)?,
            "--runs" => o.runs = num(val("--runs")?)?.max(1),
            "--cpu-runs" => o.cpu_runs = num(val("--cpu-runs")?)?.max(1),
            "--no-cpu" => o.cpu = false,
            "--log-n" => {
                o.log_n = val("--log-n")?
                    .split(',')
                    .map(|s| s.parse::<u32>().map_err(|e| format!("{s}: {e}")))
                    .collect::<std::result::Result<_, _>>()?
            }
            "-h" | "--help" => {
                return Err(
                    "usage: gpu-bench [--device 0] [--log-n 12,...,17] [--limbs 40] \
                            [--polys 2] [--runs 50] [--cpu-runs 5] [--no-cpu]"
                        .into(),
                )
            }
            other => return Err(format!("unknown argument {other}")),
        }
    }
    if o.limbs < 2 {
        return Err("--limbs must be at least 2".into());
    }
    Ok(o)
}

fn median(mut v: Vec<f64>) -> f64 {
    v.sort_by(|a, b| a.total_cmp(b));
    v[v.len() / 2]
}

/// Median time in microseconds of `f` on the device, measured with CUDA events around each run.
fn time_gpu(g: &GpuContext, runs: usize, mut f: impl FnMut() -> Result<()>) -> Result<f64> {
    let flags = Some(cudarc::driver::sys::CUevent_flags::CU_EVENT_DEFAULT);
    let err = |e: cudarc::driver::DriverError| he_gpu::Error::Driver {
        operation: "CUDA event",
        message: format!("{e:?}"),
    };
    for _ in 0..3 {
        f()?;
    }
    g.synchronize()?;
    let (start, end) = (
        g.cuda().new_event(flags).map_err(err)?,
        g.cuda().new_event(flags).map_err(err)?,
    );
    let mut t = Vec::with_capacity(runs);
    for _ in 0..runs {
        start.record(g.stream()).map_err(err)?;
        f()?;
        end.record(g.stream()).map_err(err)?;
        t.push(start.elapsed_ms(&end).map_err(err)? as f64 * 1e3);
    }
    Ok(median(t))
}

fn time_cpu(runs: usize, mut f: impl FnMut()) -> f64 {
    f();
    median(
        (0..runs)
            .map(|_| {
                let t = Instant::now();
                f();
                t.elapsed().as_secs_f64() * 1e6
            })
            .collect(),
    )
}

fn primes(n: usize, count: usize) -> Vec<u64> {
    let mut out: Vec<u64> = Vec::new();
    for i in 0..count {
        let bits = if i % 2 == 0 { 60 } else { 50 };
        let q = ntt_primes(bits, 1, n, &out).expect("enough NTT primes")[0];
        out.push(q);
    }
    out
}

struct Row {
    op: &'static str,
    log_n: u32,
    shape: String,
    gpu_us: f64,
    bytes: f64,
    cpu_us: Option<f64>,
}

fn run(o: &Opts) -> Result<()> {
    let g = GpuContext::new(o.device)?;
    let info = g.info().clone();
    let nvrtc = he_gpu::nvrtc_version()?;
    println!(
        "device {}: {} (sm_{}{}, {} SMs, {:.1} GiB), NVRTC {}.{}, kernels for {}",
        info.ordinal,
        info.name,
        info.compute_capability.0,
        info.compute_capability.1,
        info.sm_count,
        info.total_memory as f64 / (1u64 << 30) as f64,
        nvrtc.0,
        nvrtc.1,
        info.arch
    );
    let bw = info.memory_bandwidth;
    println!(
        "HBM peak {:.2} TB/s ({}); CPU threads: {}",
        bw / 1e12,
        info.bandwidth_source,
        std::thread::available_parallelism()
            .map(|n| n.get())
            .unwrap_or(1)
    );
    let t = Instant::now();
    g.load_kernels()?;
    println!("NVRTC compile + module load: {:.2?}\n", t.elapsed());

    let mut rows = Vec::new();
    let mut prng = Prng::from_seed([42; 32]);
    let (l, polys) = (o.limbs, o.polys);
    for &log_n in &o.log_n {
        let n = 1usize << log_n;
        // Hybrid key switching shape: dnum = 4 digits of α = ceil(L/4) primes, k = α special primes.
        let alpha = l.div_ceil(4);
        let dnum = l.div_ceil(alpha);
        let moduli = primes(n, l + alpha);
        let cpu = RingContext::new(n, &moduli[..l])?;
        let ring = DeviceRing::from_ring(&g, &*RingContext::new(n, &moduli)?)?;
        let set = ring.prefix(l)?;
        let words = (polys * l * n) as f64;
        let shape = format!("L={l} x{polys}");
        let host: Vec<Poly<Coeff>> = (0..polys)
            .map(|_| cpu.uniform(&mut prng, l).unwrap())
            .collect();
        let host_eval: Vec<Poly<Eval>> = host
            .iter()
            .map(|p| cpu.to_eval(p.clone()).unwrap())
            .collect();
        let refs: Vec<&Poly<Coeff>> = host.iter().collect();
        let erefs: Vec<&Poly<Eval>> = host_eval.iter().collect();

        // NTT forward / inverse.
        let mut cur_c = Some(DevicePoly::<Coeff>::from_polys(&set, &refs)?);
        let mut cur_e: Option<DevicePoly<Eval>> = None;
        let (mut tf, mut ti) = (Vec::new(), Vec::new());
        {
            let flags = Some(cudarc::driver::sys::CUevent_flags::CU_EVENT_DEFAULT);
            let err = |e: cudarc::driver::DriverError| he_gpu::Error::Driver {
                operation: "CUDA event",
                message: format!("{e:?}"),
            };
            let ev: Vec<_> = (0..3)
                .map(|_| g.cuda().new_event(flags))
                .collect::<std::result::Result<_, _>>()
                .map_err(err)?;
            for r in 0..o.runs + 3 {
                ev[0].record(g.stream()).map_err(err)?;
                if let Some(c) = cur_c.take() {
                    cur_e = Some(c.into_eval()?);
                }
                ev[1].record(g.stream()).map_err(err)?;
                if let Some(e) = cur_e.take() {
                    cur_c = Some(e.into_coeff()?);
                }
                ev[2].record(g.stream()).map_err(err)?;
                if r >= 3 {
                    tf.push(ev[0].elapsed_ms(&ev[1]).map_err(err)? as f64 * 1e3);
                    ti.push(ev[1].elapsed_ms(&ev[2]).map_err(err)? as f64 * 1e3);
                }
            }
        }
        let cpu_fwd = o.cpu.then(|| {
            time_cpu(o.cpu_runs, || {
                for p in &host {
                    let _ = cpu.to_eval(p.clone());
                }
            })
        });
        let cpu_inv = o.cpu.then(|| {
            time_cpu(o.cpu_runs, || {
                for p in &host_eval {
                    let _ = cpu.to_coeff(p.clone());
                }
            })
        });
        rows.push(Row {
            op: "NTT forward",
            log_n,
            shape: shape.clone(),
            gpu_us: median(tf),
            bytes: 16.0 * words,
            cpu_us: cpu_fwd,
        });
        rows.push(Row {
            op: "NTT inverse",
            log_n,
            shape: shape.clone(),
            gpu_us: median(ti),
            bytes: 16.0 * words,
            cpu_us: cpu_inv,
        });

        // Element-wise.
        let a = DevicePoly::<Eval>::from_polys(&set, &erefs)?;
        let b = a.try_clone()?;
        let mut c = a.try_clone()?;
        let t_add = time_gpu(&g, o.runs, || c.add_assign(&b))?;
        let t_mul = time_gpu(&g, o.runs, || c.mul_assign(&b))?;
        let t_mac = time_gpu(&g, o.runs, || c.mul_add_assign(&a, &b))?;
        let mut out = a.try_clone()?;
        let t_aut = time_gpu(&g, o.runs, || a.automorphism_into(5, &mut out))?;
        let ac = DevicePoly::<Coeff>::from_polys(&set, &refs)?;
        let mut outc = ac.try_clone()?;
        let t_autc = time_gpu(&g, o.runs, || ac.automorphism_into(5, &mut outc))?;
        let (x, y) = (host_eval[0].clone(), host_eval[0].clone());
        let cpu_add = o.cpu.then(|| {
            time_cpu(o.cpu_runs, || {
                let mut z = x.clone();
                for _ in 0..polys {
                    let _ = cpu.add_assign(&mut z, &y);
                }
            })
        });
        let cpu_mul = o.cpu.then(|| {
            time_cpu(o.cpu_runs, || {
                let mut z = x.clone();
                for _ in 0..polys {
                    let _ = cpu.mul_assign(&mut z, &y);
                }
            })
        });
        let cpu_mac = o.cpu.then(|| {
            time_cpu(o.cpu_runs, || {
                let mut z = x.clone();
                for _ in 0..polys {
                    let _ = cpu.mul_add_assign(&mut z, &x, &y);
                }
            })
        });
        let cpu_aut = o.cpu.then(|| {
            time_cpu(o.cpu_runs, || {
                for _ in 0..polys {
                    let _ = cpu.automorphism_eval(&x, 5);
                }
            })
        });
        let cpu_autc = o.cpu.then(|| {
            time_cpu(o.cpu_runs, || {
                for p in &host {
                    let _ = cpu.automorphism_coeff(p, 5);
                }
            })
        });
        rows.push(Row {
            op: "add",
            log_n,
            shape: shape.clone(),
            gpu_us: t_add,
            bytes: 24.0 * words,
            cpu_us: cpu_add,
        });
        rows.push(Row {
            op: "mul",
            log_n,
            shape: shape.clone(),
            gpu_us: t_mul,
            bytes: 24.0 * words,
            cpu_us: cpu_mul,
        });
        rows.push(Row {
            op: "mul-accumulate",
            log_n,
            shape: shape.clone(),
            gpu_us: t_mac,
            bytes: 32.0 * words,
            cpu_us: cpu_mac,
        });
        rows.push(Row {
            op: "automorphism eval",
            log_n,
            shape: shape.clone(),
            gpu_us: t_aut,
            bytes: 16.0 * words,
            cpu_us: cpu_aut,
        });
        rows.push(Row {
            op: "automorphism coeff",
            log_n,
            shape: shape.clone(),
            gpu_us: t_autc,
            bytes: 16.0 * words,
            cpu_us: cpu_autc,
        });

        // Fast base conversion, ModUp of one digit: alpha limbs -> (L - alpha) + alpha limbs.
        let from = ring.prefix(alpha)?;
        let to = ring.limb_set(&(alpha..l + alpha).collect::<Vec<_>>())?;
        let conv = DeviceBaseConverter::new(&from, &to)?;
        let small = RingContext::new(n, &moduli[..alpha])?;
        let digit_host: Vec<Poly<Coeff>> = (0..polys)
            .map(|_| small.uniform(&mut prng, alpha).unwrap())
            .collect();
        let din = DevicePoly::<Coeff>::from_polys(&from, &digit_host.iter().collect::<Vec<_>>())?;
        let mut dout = DevicePoly::<Coeff>::zeros(&to, polys)?;
        let t_bc = time_gpu(&g, o.runs, || conv.convert_approx(&din, &mut dout))?;
        let bmods: Vec<Modulus> = moduli[alpha..l + alpha]
            .iter()
            .map(|q| Modulus::new(*q).unwrap())
            .collect();
        let cconv = BaseConverter::new(&RnsBasis::new(&moduli[..alpha])?, &bmods)?;
        let cpu_bc = o.cpu.then(|| {
            let mut buf = vec![0u64; l * n];
            time_cpu(o.cpu_runs, || {
                for p in &digit_host {
                    let _ = cconv.convert_approx(p.as_slice(), &mut buf, n);
                }
            })
        });
        rows.push(Row {
            op: "base conversion",
            log_n,
            shape: format!("{alpha}->{l} x{polys}"),
            gpu_us: t_bc,
            bytes: 8.0 * ((alpha + l) * n * polys) as f64,
            cpu_us: cpu_bc,
        });

        // Key-switching inner product at the top level: dnum digits over Q u P (L + alpha limbs).
        let qp = ring.prefix(l + alpha)?;
        let ks_shape = KeyShape {
            n,
            q_limbs: l,
            p_limbs: alpha,
            dnum,
        };
        let mut key = vec![0u64; ks_shape.words()];
        let ms: Vec<Modulus> = moduli.iter().map(|q| Modulus::new(*q).unwrap()).collect();
        for (r, row) in key.chunks_exact_mut(n).enumerate() {
            prng.fill_uniform(&ms[r % (l + alpha)], row);
        }
        let dkey = DeviceKeySwitchKey::upload(&ring, ks_shape, &key)?;
        let qp_cpu = RingContext::new(n, &moduli)?;
        let digits_host: Vec<Poly<Eval>> = (0..dnum)
            .map(|_| qp_cpu.uniform(&mut prng, l + alpha).unwrap())
            .collect();
        let dd = DevicePoly::<Eval>::from_polys(&qp, &digits_host.iter().collect::<Vec<_>>())?;
        let mut acc = DevicePoly::<Eval>::zeros(&qp, 2)?;
        let t_ks = time_gpu(&g, o.runs, || {
            key_switch_inner_product(&mut acc, &dd, &dkey)
        })?;
        let key_parts: Vec<Poly<Eval>> = key
            .chunks_exact((l + alpha) * n)
            .map(|c| {
                Poly::<Eval, &[u64]>::from_container(c, n, l + alpha)
                    .unwrap()
                    .to_owned_poly()
            })
            .collect();
        let cpu_ks = o.cpu.then(|| {
            time_cpu(o.cpu_runs, || {
                let mut acc0 = qp_cpu.zero::<Eval>(l + alpha).unwrap();
                let mut acc1 = qp_cpu.zero::<Eval>(l + alpha).unwrap();
                for (j, d) in digits_host.iter().enumerate() {
                    let _ = qp_cpu.mul_add_assign(&mut acc0, d, &key_parts[2 * j]);
                    let _ = qp_cpu.mul_add_assign(&mut acc1, d, &key_parts[2 * j + 1]);
                }
            })
        });
        let ks_words = ((dnum * 3 + 4) * (l + alpha) * n) as f64;
        rows.push(Row {
            op: "key-switch inner product",
            log_n,
            shape: format!("dnum={dnum} L+k={}", l + alpha),
            gpu_us: t_ks,
            bytes: 8.0 * ks_words,
            cpu_us: cpu_ks,
        });
        g.synchronize()?;
        eprintln!("N=2^{log_n} done");
    }

    println!(
        "| op | N | shape | GPU median (µs) | GB/s | % HBM peak | CPU median (µs) | speed-up |"
    );
    println!("|---|---|---|---:|---:|---:|---:|---:|");
    for r in rows {
        let gbs = r.bytes / (r.gpu_us * 1e-6) / 1e9;
        let peak = if bw > 0.0 {
            format!("{:.0}%", 100.0 * gbs * 1e9 / bw)
        } else {
            "?".into()
        };
        let (cpu, sp) = match r.cpu_us {
            Some(c) => (format!("{c:.1}"), format!("{:.1}x", c / r.gpu_us)),
            None => ("-".into(), "-".into()),
        };
        println!(
            "| {} | 2^{} | {} | {:.1} | {:.0} | {} | {} | {} |",
            r.op, r.log_n, r.shape, r.gpu_us, gbs, peak, cpu, sp
        );
    }
    Ok(())
}

fn main() {
    let opts = match parse() {
        Ok(o) => o,
        Err(e) => {
            eprintln!("{e}");
            std::process::exit(2);
        }
    };
    if let Err(e) = run(&opts) {
        eprintln!("gpu-bench: {e}");
        std::process::exit(1);
    }
}
