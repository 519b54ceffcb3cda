//! `home-store`: inspect and check a HomE object store.
//!
//! ```text
//! home-store list   <DIR> [--budget BYTES]   objects (key, type, size, params hash, segment), totals
//! home-store verify <DIR>                    check every payload checksum (exit 1 on failure)
//! home-store compact <DIR>                   rewrite live objects, reclaim space (takes the writer lock)
//! home-store repair <DIR> --discard-damaged-tail
//!                                            drop a damaged committed last index record (loses
//!                                            what it committed), after which the store opens
//! ```

use clap::{Parser, Subcommand};
use pmem_store::{Store, StoreConfig};
use std::path::PathBuf;
use std::process::ExitCode;

#[derive(Parser)]
#[command(
    name = "home-store",
    about = "Inspect and check a HomE pmem-store directory"
)]
struct Cli {
    #[command(subcommand)]
    cmd: Cmd,
}

#[derive(Subcommand)]
enum Cmd {
    /// List objects, totals and the budget.
    List {
        /// Store directory.
        dir: PathBuf,
        /// DRAM budget to report (bytes).
        #[arg(long, default_value_t = 1 << 30)]
        budget: u64,
    },
    /// Check every object's checksum.
    Verify {
        /// Store directory.
        dir: PathBuf,
    },
    /// Rewrite live objects into fresh segments and drop the rest.
    Compact {
        /// Store directory.
        dir: PathBuf,
    },
    /// Repair a store that writable open refuses.
    Repair {
        /// Store directory.
        dir: PathBuf,
        /// Discard a damaged committed record at the end of the index (whatever it committed
        /// is lost). Required: repair never discards anything unless asked by name.
        #[arg(long)]
        discard_damaged_tail: bool,
    },
}

fn report_damage(r: &pmem_store::RecoveryReport) {
    if let Some(d) = &r.damaged {
        println!(
            "DAMAGED: committed index record at byte {} ({} bytes to the end) is damaged: {}{}",
            d.offset,
            d.bytes,
            d.reason,
            if d.discarded {
                " -- discarded"
            } else {
                " -- kept; `home-store repair DIR --discard-damaged-tail` drops it"
            }
        );
    }
}

fn human(b: u64) -> String {
    const U: [&str; 5] = ["B", "KiB", "MiB", "GiB", "TiB"];
    let mut v = b as f64;
    let mut i = 0;
    while v >= 1024.0 && i + 1 < U.len() {
        v /= 1024.0;
        i += 1;
    }
    if i == 0 {
        format!("{b} B")
    } else {
        format!("{v:.1} {}", U[i])
    }
}

fn run(cli: Cli) -> Result<bool, pmem_store::StoreError> {
    match cli.cmd {
        Cmd::List { dir, budget } => {
            let s = Store::open(
                &dir,
                StoreConfig::new(None)
                    .read_only(true)
                    .prefetch(false)
                    .budget(budget),
            )?;
            let r = s.recovery();
            if r.torn_bytes > 0 {
                println!(
                    "note: {} bytes of a torn (uncommitted) index record ignored: {}",
                    r.torn_bytes,
                    r.torn_reason.clone().unwrap_or_default()
                );
            }
            report_damage(r);
            for b in &r.bad_segments {
                println!("warning: {b}");
            }
            println!(
                "{:<40} {:<11} {:>12} {:>16} {:>8} {:>12}",
                "KEY", "TYPE", "SIZE", "PARAMS", "SEGMENT", "OFFSET"
            );
            for o in s.list() {
                println!(
                    "{:<40} {:<11} {:>12} {:>16x} {:>8} {:>12}",
                    o.key,
                    o.meta.ty,
                    human(o.len),
                    o.meta.params_hash,
                    o.segment,
                    o.offset
                );
            }
            let st = s.stats();
            println!(
                "{} objects, {} payload in {} segments ({} on disk), index {}; store bound to params {}; budget {}",
                st.objects,
                human(st.payload_bytes),
                st.segments,
                human(st.segment_file_bytes),
                human(st.index_bytes),
                s.bound_params_hash().map_or("(none)".to_string(), |h| format!("{h:016x}")),
                human(st.budget_bytes)
            );
            Ok(true)
        }
        Cmd::Verify { dir } => {
            let s = Store::open(&dir, StoreConfig::new(None).read_only(true).prefetch(false))?;
            let r = s.verify();
            for f in &r.failures {
                println!("FAILED: {f}");
            }
            println!(
                "{} objects checked, {} verified, {} failed",
                r.objects,
                human(r.bytes),
                r.failures.len()
            );
            Ok(r.failures.is_empty())
        }
        Cmd::Compact { dir } => {
            let s = Store::open(&dir, StoreConfig::new(None).prefetch(false))?;
            let n = s.compact()?;
            println!("compacted: {} reclaimed", human(n));
            Ok(true)
        }
        Cmd::Repair {
            dir,
            discard_damaged_tail,
        } => {
            if !discard_damaged_tail {
                eprintln!("home-store repair: nothing asked; pass --discard-damaged-tail to drop a damaged last index record");
                return Ok(false);
            }
            let s = Store::open(
                &dir,
                StoreConfig::new(None)
                    .prefetch(false)
                    .discard_damaged_tail(true),
            )?;
            let r = s.recovery();
            if r.damaged.is_none() {
                println!("no damaged index record found; nothing discarded");
            }
            report_damage(r);
            Ok(true)
        }
    }
}

fn main() -> ExitCode {
    match run(Cli::parse()) {
        Ok(true) => ExitCode::SUCCESS,
        Ok(false) => ExitCode::FAILURE,
        Err(e) => {
            eprintln!("home-store: {e}");
            ExitCode::from(2)
        }
    }
}
