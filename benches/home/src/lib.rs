//! Shared helpers of HomE's benchmark programs: medians and JSON lines in the format of
//! `benches/peer/table.py`.

use std::time::Instant;

/// mimalloc keeps freed pages mapped: large polynomial buffers are reused without the page
/// faults that glibc's mmap threshold causes for every fresh multi-megabyte allocation.
#[global_allocator]
static GLOBAL: mimalloc::MiMalloc = mimalloc::MiMalloc;

/// CPU time consumed by the whole process so far, in microseconds (all threads).
pub fn process_cpu_us() -> f64 {
    let mut ts = libc::timespec {
        tv_sec: 0,
        tv_nsec: 0,
    };
    // SAFETY: clock_gettime writes one timespec into the valid, exclusively borrowed `ts`.
    let rc = unsafe { libc::clock_gettime(libc::CLOCK_PROCESS_CPUTIME_ID, &mut ts) };
    if rc != 0 {
        return f64::NAN;
    }
    ts.tv_sec as f64 * 1e6 + ts.tv_nsec as f64 / 1e3
}

/// Median CPU time (process-wide) of `reps` runs of `f` after two warm-ups, in microseconds:
/// robust to other processes on a shared machine, unlike wall time.
pub fn median_cpu_us(reps: usize, mut f: impl FnMut()) -> f64 {
    f();
    f();
    let mut v: Vec<f64> = (0..reps.max(1))
        .map(|_| {
            let t = process_cpu_us();
            f();
            process_cpu_us() - t
        })
        .collect();
    v.sort_by(|a, b| a.total_cmp(b));
    v[v.len() / 2]
}

/// Runs `f` twice to warm up, then `reps` times, and returns the median in microseconds.
pub fn median_us(reps: usize, mut f: impl FnMut()) -> f64 {
    f();
    f();
    let mut v: Vec<f64> = (0..reps.max(1))
        .map(|_| {
            let t = Instant::now();
            f();
            t.elapsed().as_secs_f64() * 1e6
        })
        .collect();
    v.sort_by(|a, b| a.total_cmp(b));
    v[v.len() / 2]
}

/// One result line, as `benches/peer/table.py` reads them (the fields of its JSON schema).
#[allow(clippy::too_many_arguments)]
pub fn json_line(
    lib: &str,
    logn: u32,
    threads: usize,
    op: &str,
    median_us: f64,
    reps: usize,
    levels: usize,
    dnum: usize,
) -> String {
    format!(
        "{{\"lib\": \"{lib}\", \"logn\": {logn}, \"threads\": {threads}, \"op\": \"{op}\", \"median_us\": {median_us:.1}, \"reps\": {reps}, \"levels\": {levels}, \"dnum\": {dnum}}}"
    )
}
