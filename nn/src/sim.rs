//! The cleartext simulator: runs a [`Plan`] in `f64` with the same lowering (folded layers,
//! the same polynomial approximations evaluated in the same order) and, in latency mode, the
//! same packing (slot vectors, the blocks' diagonals, folds). Optionally injects the
//! Gaussian noise CKKS adds at encryption and at each rescaling, so that a user sees the
//! expected error before encrypting anything.

use crate::error::{shape_err, Result};
use crate::plan::{Mode, PackedLinear, Plan, StepOp};
use he_core::circuits::polynomial::{CleartextBackend, PolynomialEvaluator};
use he_core::ckks::Complex64;
use std::cell::RefCell;

/// A small deterministic Gaussian generator (SplitMix64, then Box–Muller or the ziggurat), for
/// noise simulation.
#[derive(Debug, Clone)]
pub struct Gaussian {
    state: u64,
}

impl Gaussian {
    /// Seeded generator.
    pub fn new(seed: u64) -> Self {
        Self {
            state: seed ^ 0x9E37_79B9_7F4A_7C15,
        }
    }
    /// A uniform `u64`.
    pub fn next_u64(&mut self) -> u64 {
        self.state = self.state.wrapping_add(0x9E37_79B9_7F4A_7C15);
        let mut z = self.state;
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        z ^ (z >> 31)
    }
    /// Uniform in `[0, 1)`.
    pub fn uniform(&mut self) -> f64 {
        (self.next_u64() >> 11) as f64 / (1u64 << 53) as f64
    }
    /// Standard normal.
    pub fn normal(&mut self) -> f64 {
        let u1 = self.uniform().max(1e-300);
        let u2 = self.uniform();
        (-2.0 * u1.ln()).sqrt() * (2.0 * std::f64::consts::PI * u2).cos()
    }

    /// A standard normal by the ziggurat method (Marsaglia and Tsang, 2000; 128 layers): one
    /// `u64`, one multiplication and one comparison for about 98.8 % of the values, the
    /// exact density for the rest (a wedge test, or the tail beyond `r` by Marsaglia's
    /// exponential method). The simulator's noise is drawn this way: several times cheaper
    /// than [`normal`](Self::normal)'s Box–Muller.
    pub fn ziggurat(&mut self) -> f64 {
        let z = Ziggurat::get();
        loop {
            let bits = self.next_u64();
            // Layer from the low 7 bits, a uniform in (-1, 1) from the top 53.
            let i = (bits & 127) as usize;
            let u = ((bits >> 11) as f64 + 0.5) * (2.0 / (1u64 << 53) as f64) - 1.0;
            let x = u * z.x[i];
            if x.abs() < z.x[i + 1] {
                return x;
            }
            if i == 0 {
                // The tail beyond r.
                loop {
                    let a = -self.uniform_open().ln() / ZIGGURAT_R;
                    let b = -self.uniform_open().ln();
                    if 2.0 * b > a * a {
                        return (ZIGGURAT_R + a).copysign(u);
                    }
                }
            }
            let y = z.f[i] + self.uniform() * (z.f[i + 1] - z.f[i]);
            if y < (-0.5 * x * x).exp() {
                return x;
            }
        }
    }

    /// Uniform in `(0, 1]`.
    fn uniform_open(&mut self) -> f64 {
        ((self.next_u64() >> 11) + 1) as f64 / (1u64 << 53) as f64
    }

    /// Adds `std` times an independent standard normal ([`ziggurat`](Self::ziggurat)) to each
    /// value.
    ///
    /// ```
    /// use he_nn::sim::Gaussian;
    /// let mut v = vec![0.0; 100_000];
    /// Gaussian::new(7).add_normal(&mut v, 2.0);
    /// let mean = v.iter().sum::<f64>() / v.len() as f64;
    /// let var = v.iter().map(|x| (x - mean) * (x - mean)).sum::<f64>() / v.len() as f64;
    /// assert!(mean.abs() < 0.03 && (var.sqrt() - 2.0).abs() < 0.02);
    /// ```
    pub fn add_normal(&mut self, v: &mut [f64], std: f64) {
        for x in v.iter_mut() {
            *x += std * self.ziggurat();
        }
    }
}

/// The ziggurat's base-layer boundary `r` for 128 layers (Marsaglia and Tsang, 2000).
const ZIGGURAT_R: f64 = 3.442_619_855_899;
/// The area of each layer: `r·f(r)` plus the tail beyond `r`, for `f(x) = exp(-x²/2)`.
const ZIGGURAT_V: f64 = 9.912_563_035_262_17e-3;

/// The ziggurat's layer table: layer `i` is the box `[0, x[i]] × [f[i], f[i+1]]`, with
/// `x[0] = v/f(r)` (the base layer with the tail folded in), `x[1] = r`,
/// `f(x[i+1]) = v/x[i] + f(x[i])` and `x[128] = 0`.
struct Ziggurat {
    x: [f64; 129],
    f: [f64; 129],
}

impl Ziggurat {
    fn get() -> &'static Self {
        static TABLE: std::sync::OnceLock<Ziggurat> = std::sync::OnceLock::new();
        TABLE.get_or_init(|| {
            let pdf = |x: f64| (-0.5 * x * x).exp();
            let mut x = [0.0; 129];
            let mut f = [0.0; 129];
            x[0] = ZIGGURAT_V / pdf(ZIGGURAT_R);
            f[0] = 0.0;
            x[1] = ZIGGURAT_R;
            f[1] = pdf(ZIGGURAT_R);
            for i in 1..128 {
                let fy = (ZIGGURAT_V / x[i] + f[i]).min(1.0);
                f[i + 1] = fy;
                x[i + 1] = if i + 1 == 128 {
                    0.0
                } else {
                    (-2.0 * fy.ln()).sqrt()
                };
            }
            f[128] = 1.0;
            Ziggurat { x, f }
        })
    }
}

/// Noise model of the simulator (standard deviations of the real part of a slot).
#[derive(Debug, Clone, Copy)]
pub struct NoiseModel {
    /// Fresh public-key encryption noise. HomE's encryption computes `(pk·u + e)` over `QP`
    /// and divides by `P`, so what remains is the rounding of that division, the same size
    /// as a rescaling's.
    pub fresh: f64,
    /// Rescaling rounding noise `sqrt(N(1+h)/24)/Δ`, `h = 2N/3` (uniform ternary secret).
    pub rescale: f64,
    /// Error of one bootstrap on a value in `[-1, 1]` (absolute, before the bootstrap's
    /// integer multiplication): `2^-22`, below what HomE's presets measure (at `N = 2^16`
    /// 24.7 bits mean and 22.3 bits minimum, BENCHMARKS.md; the tests check the insecure
    /// `N = 2^12` preset against it too).
    pub bootstrap: f64,
}

impl NoiseModel {
    /// The model for a plan's parameters.
    pub fn for_plan(plan: &Plan) -> Self {
        let n = plan.params.degree() as f64;
        let h = 2.0 * n / 3.0;
        let delta = plan.params.default_scale();
        let r = (n * (1.0 + h) / 24.0).sqrt() / delta;
        Self {
            fresh: r,
            rescale: r,
            bootstrap: 2f64.powi(-22),
        }
    }
}

struct Noise<'a> {
    model: Option<NoiseModel>,
    rng: &'a RefCell<Gaussian>,
}

impl Noise<'_> {
    fn add(&self, v: &mut [f64], std: f64) {
        if self.model.is_some() {
            self.rng.borrow_mut().add_normal(v, std);
        }
    }
    fn rescale(&self, v: &mut [f64]) {
        if let Some(m) = self.model {
            self.add(v, m.rescale);
        }
    }
}

/// Cyclic left rotation of a slot vector by `k`.
pub fn rotate_slots(v: &[f64], k: i64) -> Vec<f64> {
    let n = v.len().max(1) as i64;
    let (head, tail) = v.split_at(k.rem_euclid(n) as usize);
    tail.iter().chain(head).copied().collect()
}

/// A callback adding simulated rescaling noise to a slot vector.
pub type NoiseHook<'a> = &'a dyn Fn(&mut [f64]);

/// Applies a packed linear layer to slot vectors, in the order the encrypted evaluator does:
/// per output tile the sum of its blocks' transforms (he-core's
/// [`Diagonals::apply_clear`](he_core::circuits::lintrans::Diagonals::apply_clear) on one
/// period, replicated over the slots), then the folds and the bias.
pub fn packed_linear_f64(
    p: &PackedLinear,
    x: &[Vec<f64>],
    slots: usize,
    noise: Option<NoiseHook<'_>>,
) -> Result<Vec<Vec<f64>>> {
    let mut out = Vec::with_capacity(p.output.tiles);
    for a in 0..p.output.tiles {
        let mut acc = vec![0.0; slots];
        for blk in p.blocks.iter().filter(|b| b.out_tile == a) {
            let n = blk.diagonals.slots();
            let xb = x
                .get(blk.in_tile)
                .ok_or_else(|| shape_err("packed input tiles", p.input.tiles, x.len()))?;
            if xb.len() < n {
                return Err(shape_err("slot vector", n, xb.len()));
            }
            let z: Vec<Complex64> = xb[..n].iter().map(|v| Complex64::new(*v, 0.0)).collect();
            let y = blk.diagonals.apply_clear(&z)?;
            for (t, v) in acc.iter_mut().enumerate() {
                *v += y[t % n].re;
            }
        }
        if let Some(f) = noise {
            f(&mut acc);
        }
        for s in &p.fold_steps {
            let r = rotate_slots(&acc, *s);
            acc.iter_mut().zip(r).for_each(|(a, b)| *a += b);
        }
        acc.iter_mut().zip(&p.bias[a]).for_each(|(a, b)| *a += b);
        out.push(acc);
    }
    Ok(out)
}

impl Plan {
    /// Runs the plan in cleartext on each input (flat vectors of the input length) and returns
    /// the outputs. `noise_seed = Some(seed)` adds simulated CKKS noise.
    pub fn simulate(&self, inputs: &[Vec<f64>], noise_seed: Option<u64>) -> Result<Vec<Vec<f64>>> {
        let rng = RefCell::new(Gaussian::new(noise_seed.unwrap_or(0)));
        let noise = Noise {
            model: noise_seed.map(|_| NoiseModel::for_plan(self)),
            rng: &rng,
        };
        inputs
            .iter()
            .map(|x| self.simulate_one(x, &noise))
            .collect()
    }

    fn simulate_one(&self, x: &[f64], noise: &Noise<'_>) -> Result<Vec<f64>> {
        if x.len() != self.input_len() {
            return Err(shape_err("simulated input", self.input_len(), x.len()));
        }
        let slots = self.params.slots();
        let latency = self.mode == Mode::Latency;
        // Values: flat vectors (throughput) or concatenated slot vectors (latency).
        let mut vals: Vec<Vec<f64>> = Vec::with_capacity(self.steps.len());
        for st in &self.steps {
            let v = match &st.op {
                StepOp::Input => {
                    let mut v = if latency {
                        st.layout.pack(x, slots).concat()
                    } else {
                        x.to_vec()
                    };
                    if let Some(m) = noise.model {
                        noise.add(&mut v, m.fresh);
                    }
                    v
                }
                StepOp::Linear(l) => {
                    let inp = &vals[st.inputs[0]];
                    if let (true, Some(p)) = (latency, &st.packed) {
                        let tiles: Vec<Vec<f64>> = inp.chunks(slots).map(<[f64]>::to_vec).collect();
                        let f = |v: &mut [f64]| noise.rescale(v);
                        packed_linear_f64(p, &tiles, slots, Some(&f))?.concat()
                    } else {
                        let mut y: Vec<f64> = l
                            .rows
                            .iter()
                            .map(|row| row.iter().map(|(j, w)| w * inp[*j]).sum())
                            .collect();
                        noise.rescale(&mut y);
                        y.iter_mut().zip(&l.bias).for_each(|(a, b)| *a += b);
                        y
                    }
                }
                StepOp::AddConst(c) => {
                    let inp = &vals[st.inputs[0]];
                    let c = if latency {
                        st.layout.pack(c, slots).concat()
                    } else {
                        c.clone()
                    };
                    inp.iter().zip(&c).map(|(a, b)| a + b).collect()
                }
                StepOp::Square => {
                    let mut y: Vec<f64> = vals[st.inputs[0]].iter().map(|a| a * a).collect();
                    noise.rescale(&mut y);
                    y
                }
                StepOp::Poly { poly, prescale } => {
                    let mut u = vals[st.inputs[0]].clone();
                    if *prescale {
                        u.iter_mut().for_each(|v| *v /= poly.bound());
                        noise.rescale(&mut u);
                    }
                    // he-core's polynomial evaluator on cleartext values: the same
                    // recursion, levels, scales and constant roundings as the engine.
                    let hook = |v: &mut [f64]| noise.rescale(v);
                    let be = CleartextBackend::new(self.params.q()).with_rescale_noise(&hook);
                    let level = st.level + poly.depth();
                    let u = be.value(u, level, self.scales[level])?;
                    poly.evaluate(&PolynomialEvaluator::new(&be), &u, self.scales[st.level])?
                        .values
                }
                StepOp::Add => {
                    let (a, b) = (&vals[st.inputs[0]], &vals[st.inputs[1]]);
                    a.iter().zip(b).map(|(x, y)| x + y).collect()
                }
                StepOp::Reshape => vals[st.inputs[0]].clone(),
                StepOp::Bootstrap { divide, multiply } => {
                    let mut u: Vec<f64> = vals[st.inputs[0]].iter().map(|v| v / divide).collect();
                    if let Some(m) = noise.model {
                        noise.add(&mut u, m.bootstrap);
                    }
                    let m = *multiply as f64;
                    u.iter_mut().for_each(|v| *v *= m);
                    u
                }
            };
            vals.push(v);
        }
        let last = self.steps.last().map(|s| s.layout);
        let out = vals.pop().unwrap_or_default();
        Ok(match (latency, last) {
            (true, Some(layout)) => {
                let tiles: Vec<Vec<f64>> = out.chunks(slots).map(<[f64]>::to_vec).collect();
                layout.unpack(&tiles, slots)
            }
            _ => out,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The standard normal CDF, by the Abramowitz–Stegun 7.1.26 erf (|error| < 1.5e-7).
    fn phi(x: f64) -> f64 {
        let z = x.abs() / std::f64::consts::SQRT_2;
        let t = 1.0 / (1.0 + 0.327_591_1 * z);
        let poly = t
            * (0.254_829_592
                + t * (-0.284_496_736
                    + t * (1.421_413_741 + t * (-1.453_152_027 + t * 1.061_405_429))));
        let erf = 1.0 - poly * (-z * z).exp();
        0.5 * (1.0 + erf.copysign(x))
    }

    #[test]
    fn ziggurat_layers_close_at_the_peak() {
        let z = Ziggurat::get();
        // The last computed layer's top is within rounding of the density's peak.
        // The top layer's area v ends at the density's peak, f(0) = 1: r and v agree.
        let top = ZIGGURAT_V / z.x[127] + z.f[127];
        assert!((top - 1.0).abs() < 1e-9, "top layer ends at {top}");
        assert!(z.x.windows(2).skip(1).all(|w| w[0] > w[1]));
    }

    /// The ziggurat's empirical CDF against Φ at 41 points and the tail beyond r, on 4·10^6
    /// values: Kolmogorov distance below the 1 % critical value 8.2e-4, and the tail
    /// mass within 10 % of 2·(1 − Φ(r)).
    #[test]
    fn ziggurat_matches_the_normal_distribution() {
        let n = 4_000_000;
        let mut g = Gaussian::new(11);
        let mut v: Vec<f64> = (0..n).map(|_| g.ziggurat()).collect();
        v.sort_by(f64::total_cmp);
        let mut worst: f64 = 0.0;
        for k in -20..=20 {
            let x = f64::from(k) * 0.2;
            let below = v.partition_point(|y| *y < x) as f64 / n as f64;
            worst = worst.max((below - phi(x)).abs());
        }
        assert!(worst < 8.2e-4, "Kolmogorov distance {worst}");
        let tail = v.iter().filter(|y| y.abs() > ZIGGURAT_R).count() as f64 / n as f64;
        let want = 2.0 * (1.0 - phi(ZIGGURAT_R));
        assert!((tail / want - 1.0).abs() < 0.1, "tail {tail} vs {want}");
        let mean = v.iter().sum::<f64>() / n as f64;
        let var = v.iter().map(|y| y * y).sum::<f64>() / n as f64 - mean * mean;
        assert!(
            mean.abs() < 2e-3 && (var - 1.0).abs() < 3e-3,
            "mean {mean} var {var}"
        );
    }
}
