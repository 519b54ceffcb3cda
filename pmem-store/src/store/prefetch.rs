//! The background prefetch thread.

use super::*;
use crate::cache::{Cache, Mode};
use std::collections::HashSet;
use std::sync::atomic::Ordering;
use std::time::Duration;

/// The prefetch thread: maps (with `MAP_POPULATE`, so pages are read in) and verifies the next
/// scheduled objects that fit in the budget, ahead of the caller.
pub(super) fn prefetch_loop(inner: &Inner) {
    let shared = &inner.cache.shared;
    let mut failed: HashSet<(u64, String)> = HashSet::new();
    while !shared.shutdown.load(Ordering::SeqCst) {
        let (version, upcoming) = {
            let g = inner.cache.lock();
            let start = g.cursor.min(g.schedule.len());
            let end = (start + 256).min(g.schedule.len());
            let upcoming: Vec<(usize, String, bool)> = g.schedule[start..end]
                .iter()
                .zip(&g.done[start..end])
                .enumerate()
                .filter(|(_, (_, done))| !**done)
                .map(|(i, (k, _))| (i, k.clone(), Cache::is_present(&g, k)))
                .collect();
            (g.schedule_version, upcoming)
        };
        // Window: the upcoming distinct keys whose sizes add up to at most the budget.
        let mut budget_left = inner.cache.budget;
        let mut seen = HashSet::new();
        let mut candidate = None;
        for (pos, key, present) in upcoming {
            if !seen.insert(key.clone()) {
                continue;
            }
            let Some(info) = inner.read_index().objects.get(&key).cloned() else {
                continue;
            };
            if info.len > budget_left {
                break;
            }
            budget_left -= info.len;
            if !present
                && !failed.contains(&(version, key.clone()))
                && inner.check_params(&info).is_ok()
            {
                candidate = Some((pos, info));
                break;
            }
        }
        let Some((pos, info)) = candidate else {
            let g = inner.cache.lock();
            if g.schedule_version == version && !shared.shutdown.load(Ordering::SeqCst) {
                let _ = shared.cv.wait_timeout(g, Duration::from_millis(50));
            }
            continue;
        };
        match inner.map_cached(&info, Mode::Prefetch { pos }) {
            Ok(Some(_)) => {}
            Ok(None) => {
                // No room yet: wait for the caller to move on or drop a handle.
                let g = inner.cache.lock();
                if !shared.shutdown.load(Ordering::SeqCst) {
                    let _ = shared.cv.wait_timeout(g, Duration::from_millis(10));
                }
            }
            Err(_) => {
                // The caller's own `get` will report the error; do not retry in this schedule.
                failed.insert((version, info.key.clone()));
            }
        }
    }
}
