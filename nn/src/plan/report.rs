//! What a plan costs and says: bytes of ciphertexts, keys and plaintexts, the memory
//! estimate, and the human-readable report.

use super::{MemoryEstimate, Mode, Plan, Step, StepOp};

impl Plan {
    /// Bytes of one ciphertext at `level`.
    pub fn ciphertext_bytes(&self, level: usize) -> usize {
        2 * (level + 1) * self.params.degree() * 8
    }

    /// Bytes of one key-switching key.
    pub fn key_bytes(&self) -> usize {
        let p = &self.params;
        p.dnum() * 2 * (p.q().len() + p.p().len()) * p.degree() * 8
    }

    /// Bytes of one key of [`level_limited_rotations`](Plan::level_limited_rotations):
    /// usable up to `top_level`, with the digits and limbs that covers.
    pub fn level_limited_key_bytes(&self) -> usize {
        let top = he_core::rlwe::MaxLevel::new(self.top_level);
        he_core::rlwe::KeyShape::for_level(&self.params, top)
            .map_or_else(|_| self.key_bytes(), |s| s.bytes())
    }

    /// Bytes of the plaintexts a step pre-encodes (latency mode): a linear layer's diagonals
    /// over `Q_l ∪ P` at its input level `l` (`l + 1` limbs of `Q` and all of `P`, as
    /// [`LinearTransform`](he_core::circuits::lintrans::LinearTransform) stores them) and its
    /// bias over `Q` at its output level; a constant addition's packed constant at its level.
    pub fn plaintext_bytes(&self, s: &Step) -> usize {
        let n8 = self.params.degree() * 8;
        if self.mode != Mode::Latency {
            return 0;
        }
        match (&s.op, &s.packed) {
            (StepOp::Linear(_), Some(p)) => {
                p.diagonal_count() * self.diagonal_bytes(s.level)
                    + p.output.tiles * (s.level + 1) * n8
            }
            (StepOp::AddConst(_), _) => s.layout.tiles * (s.level + 1) * n8,
            _ => 0,
        }
    }

    /// Bytes of one encoded diagonal of a linear layer whose output is at `level`: over
    /// `Q_{level+1} ∪ P` (`level + 2` limbs of `Q` and all of `P`).
    pub fn diagonal_bytes(&self, level: usize) -> usize {
        (level + 2 + self.params.p().len()) * self.params.degree() * 8
    }

    /// Key-switching keys the plan holds: relinearisation, Galois keys (level-limited ones
    /// included), and bootstrapping's conjugation and sparse-to-dense keys.
    pub fn key_count(&self) -> usize {
        usize::from(self.needs_relinearization())
            + self.galois_elements.len()
            + self
                .bootstrap
                .as_ref()
                .map_or(0, |c| 1 + usize::from(c.sparse_secret.is_some()))
    }

    /// Whether relinearization is needed (any ciphertext product).
    pub fn needs_relinearization(&self) -> bool {
        self.steps
            .iter()
            .any(|s| matches!(s.op, StepOp::Square | StepOp::Poly { .. }))
            || self.bootstrap.is_some()
    }

    /// Number of bootstraps one inference runs.
    pub fn bootstrap_count(&self) -> usize {
        self.steps
            .iter()
            .filter(|s| matches!(s.op, StepOp::Bootstrap { .. }))
            .count()
    }

    /// `dft_bytes`, `dft_work`: bootstrapping's DFT plaintexts and working set
    /// ([`BootstrapFootprint`](he_core::circuits::bootstrapping::BootstrapFootprint); 0 without
    /// a bootstrapping configuration).
    pub(super) fn estimate_memory(&self, dft_bytes: usize, dft_work: usize) -> MemoryEstimate {
        let last_use: Vec<usize> = {
            let mut lu: Vec<usize> = (0..self.steps.len()).collect();
            for (i, s) in self.steps.iter().enumerate() {
                for &j in &s.inputs {
                    lu[j] = lu[j].max(i);
                }
            }
            if let Some(l) = lu.last_mut() {
                *l = usize::MAX;
            }
            lu
        };
        let count = |s: &Step| match self.mode {
            Mode::Throughput => s.len,
            Mode::Latency => s.layout.tiles,
        };
        let mut peak = 0;
        for i in 0..self.steps.len() {
            let live: usize = (0..=i)
                .filter(|&j| last_use[j] >= i && !matches!(self.steps[j].op, StepOp::Reshape))
                .map(|j| count(&self.steps[j]) * self.ciphertext_bytes(self.steps[j].level))
                .sum();
            peak = peak.max(live);
        }
        // Bootstrapping adds conjugation and, with a sparse ephemeral secret, the
        // sparse-to-dense key (its rotations are among the Galois elements already).
        let boot_keys = self
            .bootstrap
            .as_ref()
            .map_or(0, |c| 1 + usize::from(c.sparse_secret.is_some()));
        let limited = self.level_limited_rotations.len();
        let keys = (usize::from(self.needs_relinearization())
            + self.galois_elements.len().saturating_sub(limited)
            + boot_keys)
            * self.key_bytes()
            + limited * self.level_limited_key_bytes();
        let plaintexts = self.steps.iter().map(|s| self.plaintext_bytes(s)).sum();
        // Bootstrapping: its DFT factors, and its working set on top of the live values
        // (the raised ciphertext, a DFT factor's input and output at the top of the chain,
        // and the largest factor's hoisted rotations and giant steps in flight).
        let (bootstrap_plaintexts, boot_work) = if self.bootstrap_count() > 0 {
            (
                dft_bytes,
                3 * self.ciphertext_bytes(self.params.max_level()) + dft_work,
            )
        } else {
            (0, 0)
        };
        let (served_plaintexts, transform_work) = self.linear_working_sets();
        MemoryEstimate {
            ciphertexts: peak + boot_work,
            keys,
            plaintexts,
            bootstrap_plaintexts,
            served_plaintexts,
            transform_work,
            cleartext_weights: self
                .steps
                .iter()
                .filter_map(|s| s.packed.as_ref())
                .flat_map(|p| p.blocks.iter())
                .map(|b| b.diagonals.len() * b.diagonals.slots() * 16)
                .sum(),
        }
    }

    /// The largest (served weights, transform working set) over the latency-mode linear
    /// layers (see [`MemoryEstimate::served_plaintexts`] and
    /// [`MemoryEstimate::transform_work`]): output tiles run in parallel on the rayon pool.
    fn linear_working_sets(&self) -> (usize, usize) {
        let n8 = self.params.degree() * 8;
        let threads = rayon::current_num_threads().max(1);
        let dnum = self.params.dnum();
        let (mut served, mut work) = (0usize, 0usize);
        if self.mode != Mode::Latency {
            return (served, work);
        }
        for (i, s) in self.steps.iter().enumerate() {
            let (StepOp::Linear(_), Some(p)) = (&s.op, &s.packed) else {
                continue;
            };
            let diagonal = self.diagonal_bytes(s.level);
            let parallel = p.output.tiles.min(threads).max(1);
            // The most diagonals one part (giant-step range) holds over all blocks.
            let n1 = p.n1.max(1);
            let largest_part = self
                .weight_parts(i)
                .iter()
                .map(|r| {
                    p.blocks
                        .iter()
                        .flat_map(|b| b.diagonals.indices())
                        .filter(|k| r.contains(&(k / n1)))
                        .count()
                })
                .max()
                .unwrap_or(0);
            let bias = p.output.tiles * (s.level + 1) * n8;
            served = served.max(parallel * largest_part * diagonal + bias);
            // Per output tile: each input's nonzero baby steps (two polynomials each) and
            // its decomposition (dnum extended digits), all in Q_l ∪ P.
            let mut per_tile = vec![0usize; p.output.tiles];
            for b in &p.blocks {
                let mut js: Vec<usize> = b.diagonals.indices().map(|k| k % p.n1).collect();
                js.sort_unstable();
                js.dedup();
                let nonzero = js.iter().filter(|j| **j != 0).count();
                if let Some(t) = per_tile.get_mut(b.out_tile) {
                    *t += (2 * nonzero + if nonzero > 0 { dnum } else { 0 }) * diagonal;
                }
            }
            per_tile.sort_unstable_by(|a, b| b.cmp(a));
            work = work.max(per_tile.iter().take(parallel).sum());
        }
        (served, work)
    }

    /// Input length.
    pub fn input_len(&self) -> usize {
        self.steps[0].len
    }

    /// Output length.
    pub fn output_len(&self) -> usize {
        self.steps.last().map(|s| s.len).unwrap_or(0)
    }

    /// Maximum inputs per batch: `N/2` in throughput mode, 1 in latency mode.
    pub fn batch_capacity(&self) -> usize {
        match self.mode {
            Mode::Throughput => self.params.slots(),
            Mode::Latency => 1,
        }
    }

    /// A multi-line human-readable report: parameters, per-step levels and scales, keys,
    /// approximations, memory.
    pub fn describe(&self) -> String {
        let mut s = format!(
            "mode {:?}; parameters {}\ndepth {} (inputs encrypted at level {}), batch capacity {}\n",
            self.mode,
            self.params.describe(),
            self.depth,
            self.top_level,
            self.batch_capacity()
        );
        if let Some(c) = &self.bootstrap {
            s += &format!(
                "bootstrapping: {} per inference, {} levels left after each (N = 2^{}, {} slots)\n",
                self.bootstrap_count(),
                c.levels_after(),
                c.log_n,
                1usize << c.log_slots
            );
        }
        for (i, st) in self.steps.iter().enumerate() {
            let what = match &st.op {
                StepOp::Input => "input".to_string(),
                StepOp::Linear(l) => format!("{} ({} nonzeros)", l.kind, l.nnz()),
                StepOp::AddConst(_) => "add constant".into(),
                StepOp::Square => "square".into(),
                StepOp::Poly { poly, prescale } => format!(
                    "{} (depth {}{})",
                    poly.label(),
                    poly.depth(),
                    if *prescale { " +1" } else { "" }
                ),
                StepOp::Add => format!("add {:?}", st.inputs),
                StepOp::Reshape => "reshape".into(),
                StepOp::Bootstrap { divide, multiply } => {
                    format!("bootstrap (x / {divide:.3}, then x {multiply})")
                }
            };
            let pack = match &st.packed {
                Some(p) => format!(
                    ", {} diagonals in {} blocks, n1 = {}, period {} -> {}",
                    p.diagonal_count(),
                    p.blocks.len(),
                    p.n1,
                    p.input.period,
                    p.output.period
                ),
                None => String::new(),
            };
            s += &format!(
                "  [{i}] {:<28} {:<44} len {:>5} level {} scale 2^{:.3}{pack}\n",
                st.name,
                what,
                st.len,
                st.level,
                self.scales[st.level].log2()
            );
        }
        if self.mode == Mode::Latency {
            s += &format!(
                "rotation steps ({}): {:?}\n",
                self.rotation_steps.len(),
                self.rotation_steps
            );
        }
        for a in &self.approximations {
            s += &format!("approximation {a}\n");
        }
        s += &match &self.flooding {
            Some(f) => format!(
                "noise flooding of outputs: s = {}, t = {}; simulated error 2^{:.1} before, flooding noise 2^{:.1} per output after\n",
                f.config.statistical_security, f.config.decryptions, f.log2_rms_before, f.log2_sigma
            ),
            None => "noise flooding of outputs: off (results must not leave the client)\n".into(),
        };
        let mb = |b: usize| b as f64 / (1u64 << 20) as f64;
        let p = &self.params;
        s += &format!(
            "key switching: dnum {} (alpha {}), {} special prime(s) of {:?} bits, {:.1} MiB per key, {} keys {:.1} MiB\n",
            p.dnum(),
            p.key_switch_basis().alpha(),
            p.p().len(),
            p.literal().log_p,
            mb(self.key_bytes()),
            self.key_count(),
            mb(self.memory.keys)
        );
        s += &format!(
            "memory estimate: ciphertexts {:.0} MiB, keys {:.0} MiB, weight plaintexts {:.0} MiB, bootstrapping plaintexts {:.0} MiB, transform working set {:.0} MiB, cleartext diagonals {:.0} MiB, total {:.0} MiB; weights served part by part: {:.0} MiB of weights held, total {:.0} MiB",
            mb(self.memory.ciphertexts),
            mb(self.memory.keys),
            mb(self.memory.plaintexts),
            mb(self.memory.bootstrap_plaintexts),
            mb(self.memory.transform_work),
            mb(self.memory.cleartext_weights),
            mb(self.memory.total()),
            mb(self.memory.served_plaintexts),
            mb(self.memory.total_served())
        );
        s
    }
}
