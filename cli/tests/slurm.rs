//! `home infer` as a real Slurm array job (examples/slurm/home-infer.sbatch), on the 64
//! committed MNIST images: 4 shards, decrypted and compared with onnxruntime's predictions;
//! then a second run in which one shard is killed with SIGKILL mid-way and the array is
//! resubmitted: nothing lost, duplicated or corrupted (the results are byte-identical to the
//! first run's, evaluation being deterministic).
//!
//! Needs a running Slurm (`examples/slurm/start-local-slurm.sh` starts one on this machine;
//! `.ci/run` does so). Without one the test prints SKIPPED — unless `HOME_REQUIRE_SLURM=1`
//! (set by CI), where it fails.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod common;
use common::*;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::{Duration, Instant};

const SHARDS: usize = 4;
const IMAGES: usize = 64;

fn slurm_ready() -> Result<(), String> {
    let o = Command::new("sinfo")
        .args(["-h", "-o", "%t"])
        .output()
        .map_err(|e| format!("sinfo: {e}"))?;
    let s = String::from_utf8_lossy(&o.stdout).into_owned();
    if o.status.success()
        && s.lines()
            .any(|l| matches!(l.trim(), "idle" | "mix" | "alloc" | "comp"))
    {
        Ok(())
    } else {
        Err(format!(
            "no Slurm node up (sinfo: {s:?} {})",
            String::from_utf8_lossy(&o.stderr)
        ))
    }
}

fn sbatch(dir: &Path, result: &str, tag: &str) -> String {
    let script = root().join("examples/slurm/home-infer.sbatch");
    let export = format!(
        "ALL,HOME_BIN={},MODEL={},KEYS={},BATCH={},RESULT={}",
        env!("CARGO_BIN_EXE_home"),
        mnist_model().display(),
        dir.join("cluster-keys").display(),
        dir.join("batch").display(),
        dir.join(result).display()
    );
    let o = Command::new("sbatch")
        .current_dir(dir)
        .args([
            "--parsable",
            &format!("--array=0-{}", SHARDS - 1),
            "--cpus-per-task=1",
            "--mem=1G",
            &format!("--job-name=home-test-{tag}"),
            &format!("--output={}/{tag}-%A_%a.out", dir.display()),
            &format!("--export={export}"),
        ])
        .arg(&script)
        .output()
        .unwrap();
    assert!(
        o.status.success(),
        "sbatch: {}",
        String::from_utf8_lossy(&o.stderr)
    );
    let id = String::from_utf8_lossy(&o.stdout).trim().to_string();
    id.split(';').next().unwrap().to_string()
}

fn job_active(job: &str) -> bool {
    let o = Command::new("squeue")
        .args(["-h", "-j", job, "-o", "%i %T"])
        .output()
        .unwrap();
    !String::from_utf8_lossy(&o.stdout).trim().is_empty()
}

fn wait_job(job: &str, limit: Duration) {
    let t = Instant::now();
    let mut down_since: Option<Instant> = None;
    while job_active(job) {
        assert!(
            t.elapsed() < limit,
            "job {job} still running after {limit:?}"
        );
        // Fail fast when the node stops responding instead of waiting out the limit.
        match slurm_ready() {
            Ok(()) => down_since = None,
            Err(why) => {
                let since = *down_since.get_or_insert_with(Instant::now);
                assert!(
                    since.elapsed() < Duration::from_secs(30),
                    "job {job}: {why}"
                );
            }
        }
        std::thread::sleep(Duration::from_millis(300));
    }
}

/// The JSON report of each task (last line of its output file).
fn reports(dir: &Path, tag: &str, job: &str) -> Vec<Option<serde_json::Value>> {
    (0..SHARDS)
        .map(|i| {
            let f = dir.join(format!("{tag}-{job}_{i}.out"));
            let s = std::fs::read_to_string(&f).unwrap_or_default();
            s.lines()
                .rev()
                .find(|l| l.starts_with('{'))
                .and_then(|l| serde_json::from_str(l).ok())
        })
        .collect()
}

fn results(dir: &Path) -> Vec<PathBuf> {
    files_below(dir)
        .into_iter()
        .filter(|p| p.extension().is_some_and(|e| e == "res"))
        .collect()
}

#[test]
fn slurm_array_job_and_kill_resume() {
    if let Err(why) = slurm_ready() {
        if std::env::var("HOME_REQUIRE_SLURM").is_ok_and(|v| v == "1") {
            panic!("HOME_REQUIRE_SLURM=1 but {why}");
        }
        eprintln!("SKIPPED: {why} (start one with examples/slurm/start-local-slurm.sh)");
        return;
    }
    let d = tempdir("slurm");
    let m = mnist_model();
    let ms = m.to_str().unwrap();
    ok(
        &d,
        &[
            "keygen",
            ms,
            "--out",
            "keys",
            "--mode",
            "latency",
            "--log-n",
            "13",
            "--no-noise-flooding",
        ],
    );
    // The cluster gets the server side only.
    std::fs::create_dir_all(d.join("cluster-keys")).unwrap();
    for f in files_below(&d.join("keys/server")) {
        std::fs::copy(&f, d.join("cluster-keys").join(f.file_name().unwrap())).unwrap();
    }
    assert_no_secret(&d.join("cluster-keys"), &d.join("keys/secret.key"));
    ok(
        &d,
        &[
            "encrypt",
            "--keys",
            "keys",
            "--in",
            mnist_images().to_str().unwrap(),
            "--out",
            "batch",
        ],
    );

    // Run 1: the array job over all 64 images.
    let job = sbatch(&d, "result", "run1");
    wait_job(&job, Duration::from_secs(400));
    let r = reports(&d, "run1", &job);
    for (i, rep) in r.iter().enumerate() {
        let rep = rep
            .as_ref()
            .unwrap_or_else(|| panic!("task {i} wrote no report"));
        assert_eq!(rep["ok"], true, "task {i}: {rep}");
        assert_eq!(rep["shard"], i);
        assert_eq!(rep["shards"], SHARDS);
        assert_eq!(rep["computed"], IMAGES / SHARDS, "task {i}: {rep}");
    }
    assert_eq!(results(&d.join("result")).len(), IMAGES);
    ok(
        &d,
        &[
            "decrypt",
            "--no-noise-flooding",
            "--keys",
            "keys",
            "--in",
            "result",
            "--out",
            "p1.csv",
        ],
    );
    let p1 = read_predictions(&d.join("p1.csv"));
    assert_eq!(
        p1,
        ort_predictions(),
        "encrypted predictions vs onnxruntime's"
    );

    // Run 2: task 1 is killed with SIGKILL after its first result, then the array is resubmitted.
    let job = sbatch(&d, "result2", "run2");
    let victim = format!("{job}_1");
    let mine: Vec<PathBuf> = (IMAGES / SHARDS..2 * IMAGES / SHARDS)
        .map(|c| d.join(format!("result2/chunk-{c:05}.res")))
        .collect();
    let t = Instant::now();
    loop {
        let done = mine.iter().filter(|p| p.exists()).count();
        if done >= 1 {
            assert!(
                done < mine.len(),
                "task 1 finished before it could be killed"
            );
            break;
        }
        assert!(
            job_active(&job) && t.elapsed() < Duration::from_secs(300),
            "task 1 never started"
        );
        std::thread::sleep(Duration::from_millis(50));
    }
    let o = Command::new("scancel")
        .args(["--signal=KILL", "--full", &victim])
        .output()
        .unwrap();
    assert!(
        o.status.success(),
        "scancel: {}",
        String::from_utf8_lossy(&o.stderr)
    );
    wait_job(&job, Duration::from_secs(400));
    let killed_with = mine.iter().filter(|p| p.exists()).count();
    assert!(killed_with < mine.len(), "task 1 was not stopped mid-way");
    let r = reports(&d, "run2", &job);
    assert!(r[1].is_none(), "the killed task reported: {:?}", r[1]);
    assert!(results(&d.join("result2")).len() < IMAGES);
    // Decrypting now refuses: the result is incomplete.
    let o = home(
        &d,
        &[
            "decrypt",
            "--no-noise-flooding",
            "--keys",
            "keys",
            "--in",
            "result2",
            "--out",
            "p2.csv",
        ],
    );
    assert!(!o.status.success() && !d.join("p2.csv").exists());
    // Resubmit the whole array: finished shards skip, the killed one completes.
    let job2 = sbatch(&d, "result2", "run2b");
    wait_job(&job2, Duration::from_secs(400));
    let r = reports(&d, "run2b", &job2);
    for (i, rep) in r.iter().enumerate() {
        let rep = rep
            .as_ref()
            .unwrap_or_else(|| panic!("task {i} wrote no report"));
        assert_eq!(rep["ok"], true, "task {i}: {rep}");
        let (computed, skipped) = (
            rep["computed"].as_u64().unwrap(),
            rep["skipped"].as_u64().unwrap(),
        );
        assert_eq!(computed + skipped, (IMAGES / SHARDS) as u64);
        if i == 1 {
            assert_eq!(skipped, killed_with as u64, "{rep}");
        } else {
            assert_eq!(computed, 0, "task {i} redid finished work: {rep}");
        }
    }
    // Nothing lost, duplicated or corrupted: exactly the 64 results, no temporaries, each
    // valid and byte-identical to run 1's, and the same predictions.
    let files = files_below(&d.join("result2"));
    assert!(
        files
            .iter()
            .all(|f| !f.file_name().unwrap().to_string_lossy().starts_with('.')),
        "temporary files left: {files:?}"
    );
    let res2 = results(&d.join("result2"));
    assert_eq!(res2.len(), IMAGES);
    for f in &res2 {
        let a = std::fs::read(f).unwrap();
        let b = std::fs::read(d.join("result").join(f.file_name().unwrap())).unwrap();
        assert!(a == b, "{} differs from run 1", f.display());
    }
    let v = ok_json(&d, &["inspect", "result2"]);
    assert_eq!(v["valid_results"], IMAGES);
    ok(
        &d,
        &[
            "decrypt",
            "--no-noise-flooding",
            "--keys",
            "keys",
            "--in",
            "result2",
            "--out",
            "p2.csv",
        ],
    );
    assert_eq!(read_predictions(&d.join("p2.csv")), p1);
}
