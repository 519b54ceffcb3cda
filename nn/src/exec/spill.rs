//! Activation spill: when the ciphertexts an engine holds between steps exceed a DRAM budget,
//! the ones needed furthest in the future are parked in a [`CiphertextSpill`] (a store on a
//! file system: `pmem-store`'s `PmemSpill`) and read back just before the step that needs
//! them.

use super::Engine;
use crate::error::Result;
use crate::plan::Step;
use he_core::circuits::spill::CiphertextSpill;
use he_core::ckks::Ciphertext;
use he_core::rlwe::Parameters;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;

/// An engine's spill area and budget.
pub(super) struct Spill {
    area: Arc<dyn CiphertextSpill>,
    budget: usize,
    runs: AtomicU64,
    spills: AtomicU64,
    restores: AtomicU64,
    bytes: AtomicU64,
}

impl std::fmt::Debug for Spill {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Spill")
            .field("budget", &self.budget)
            .field("stats", &self.stats())
            .finish()
    }
}

impl Spill {
    fn stats(&self) -> SpillStats {
        SpillStats {
            spills: self.spills.load(Ordering::Relaxed),
            restores: self.restores.load(Ordering::Relaxed),
            bytes: self.bytes.load(Ordering::Relaxed),
        }
    }
}

/// What an engine's activation spill has done since it was set.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct SpillStats {
    /// Values (a step's ciphertexts) parked.
    pub spills: u64,
    /// Values read back.
    pub restores: u64,
    /// Bytes of ciphertexts parked.
    pub bytes: u64,
}

fn bytes_of(cts: &[Ciphertext]) -> usize {
    cts.iter()
        .flat_map(|c| c.parts())
        .map(|p| 8 * p.as_slice().len())
        .sum()
}

impl Engine {
    /// Parks the values the engine holds between steps in `area` whenever their bytes exceed
    /// `budget_bytes`: after each step, the values whose next use is furthest away go first
    /// (a residual branch across a block, say), and each comes back just before the step
    /// that reads it. The results are bit-identical to a run that holds everything; runs on
    /// one engine may overlap (their names differ). A value larger than the budget alone
    /// stays in memory while it is needed next.
    pub fn with_activation_spill(
        mut self,
        area: Arc<dyn CiphertextSpill>,
        budget_bytes: usize,
    ) -> Self {
        self.spill = Some(Spill {
            area,
            budget: budget_bytes,
            runs: AtomicU64::new(0),
            spills: AtomicU64::new(0),
            restores: AtomicU64::new(0),
            bytes: AtomicU64::new(0),
        });
        self
    }

    /// Counters of the activation spill, if one is set.
    pub fn spill_stats(&self) -> Option<SpillStats> {
        self.spill.as_ref().map(Spill::stats)
    }
}

/// The values of one run: in memory, parked, or freed.
pub(super) type Values = Vec<Option<Arc<Vec<Ciphertext>>>>;

/// One run's spill state; parked values still named when it is dropped (a run that failed)
/// are released.
pub(super) struct SpillRun<'a> {
    spill: Option<&'a Spill>,
    params: &'a Arc<Parameters>,
    run: u64,
    parked: Vec<bool>,
}

impl<'a> SpillRun<'a> {
    pub(super) fn new(spill: Option<&'a Spill>, params: &'a Arc<Parameters>, steps: usize) -> Self {
        let run = spill.map_or(0, |s| s.runs.fetch_add(1, Ordering::Relaxed));
        Self {
            spill,
            params,
            run,
            parked: vec![false; steps],
        }
    }

    fn name(&self, j: usize) -> String {
        format!("run{}/step{j:05}", self.run)
    }

    /// Reads back the parked values among `inputs`.
    pub(super) fn restore(&mut self, inputs: &[usize], vals: &mut Values) -> Result<()> {
        let Some(spill) = self.spill else {
            return Ok(());
        };
        for &j in inputs {
            if !self.parked.get(j).copied().unwrap_or(false) {
                continue;
            }
            let name = self.name(j);
            let cts = spill.area.restore(&name, self.params)?;
            spill.area.release(&name)?;
            if let (Some(v), Some(p)) = (vals.get_mut(j), self.parked.get_mut(j)) {
                *v = Some(Arc::new(cts));
                *p = false;
            }
            spill.restores.fetch_add(1, Ordering::Relaxed);
        }
        Ok(())
    }

    /// After step `i`: parks values, furthest next use first, until the held bytes fit the
    /// budget (or nothing more can be parked).
    pub(super) fn fit(&mut self, i: usize, steps: &[Step], vals: &mut Values) -> Result<()> {
        let Some(spill) = self.spill else {
            return Ok(());
        };
        loop {
            // Held bytes, each shared value once.
            let mut seen: Vec<*const Vec<Ciphertext>> = Vec::new();
            let mut held = 0;
            for v in vals.iter().flatten() {
                let p = Arc::as_ptr(v);
                if !seen.contains(&p) {
                    seen.push(p);
                    held += bytes_of(v);
                }
            }
            if held <= spill.budget {
                return Ok(());
            }
            // The value needed furthest ahead that only one index holds.
            let victim = vals
                .iter()
                .enumerate()
                .filter_map(|(j, v)| {
                    let v = v.as_ref()?;
                    if Arc::strong_count(v) > 1 {
                        return None;
                    }
                    let next = steps
                        .iter()
                        .enumerate()
                        .skip(i + 1)
                        .find(|(_, s)| s.inputs.contains(&j))
                        .map(|(k, _)| k)?;
                    (next > i + 1).then_some((next, j))
                })
                .max();
            let Some((_, j)) = victim else {
                return Ok(());
            };
            let name = self.name(j);
            if let Some(v) = vals.get_mut(j).and_then(Option::take) {
                spill.area.spill(&name, &v)?;
                spill.spills.fetch_add(1, Ordering::Relaxed);
                spill
                    .bytes
                    .fetch_add(bytes_of(&v) as u64, Ordering::Relaxed);
                if let Some(p) = self.parked.get_mut(j) {
                    *p = true;
                }
            }
        }
    }
}

impl Drop for SpillRun<'_> {
    fn drop(&mut self) {
        if let Some(spill) = self.spill {
            for j in 0..self.parked.len() {
                if self.parked.get(j).copied().unwrap_or(false) {
                    let _ = spill.area.release(&self.name(j));
                }
            }
        }
    }
}
