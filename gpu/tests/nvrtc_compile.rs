//! Compiles every kernel source with NVRTC to PTX for compute capability 9.0 (H100/H200).
//! Needs `libnvrtc.so.12` (not a GPU or driver): run `gpu/scripts/install-nvrtc.sh` first, or
//! put NVRTC's directory on `LD_LIBRARY_PATH`; otherwise the test prints SKIPPED and passes.
#![cfg(feature = "cuda")]
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use he_gpu::kernels::{self, SOURCES};
use he_gpu::nvrtc;

const ARCH: &str = "compute_90";

fn nvrtc_or_skip() -> bool {
    if !nvrtc::preload_nvrtc() {
        println!(
            "SKIPPED: NVRTC not found (libnvrtc.so.12); run gpu/scripts/install-nvrtc.sh or set LD_LIBRARY_PATH / {}",
            nvrtc::NVRTC_LIB_ENV
        );
        return false;
    }
    true
}

#[test]
fn every_kernel_source_compiles_for_sm90() {
    if !nvrtc_or_skip() {
        return;
    }
    let (major, minor) = nvrtc::nvrtc_version().expect("NVRTC version");
    println!("NVRTC {major}.{minor}, target {ARCH}");
    for src in SOURCES {
        let t = std::time::Instant::now();
        let ptx = match nvrtc::compile_source(src, ARCH) {
            Ok(p) => p,
            Err(e) => panic!("{e}"),
        };
        for e in src.entries {
            assert!(
                ptx.contains(&format!(".entry {e}(")),
                "{}: entry {e} missing from the PTX",
                src.name
            );
        }
        assert!(ptx.contains(".target sm_90"), "{}: wrong target", src.name);
        // The radix-R register arrays of the strided NTT pass must be fully unrolled into
        // registers: no local-memory (stack) traffic in any kernel.
        assert!(
            !ptx.contains("ld.local") && !ptx.contains("st.local"),
            "{}: uses local memory",
            src.name
        );
        println!(
            "compiled {:<16} {:>2} entries, {:>7} bytes of PTX in {:.2?}",
            src.name,
            src.entries.len(),
            ptx.len(),
            t.elapsed()
        );
    }
}

#[test]
fn the_combined_program_compiles_for_sm90() {
    if !nvrtc_or_skip() {
        return;
    }
    let ptx = nvrtc::compile(&kernels::full_source(), "he-gpu-kernels.cu", ARCH)
        .unwrap_or_else(|e| panic!("{e}"))
        .to_src();
    let entries: usize = SOURCES.iter().map(|s| s.entries.len()).sum();
    assert_eq!(ptx.matches(".entry ").count(), entries);
}

#[test]
fn a_broken_source_is_a_typed_error_with_the_log() {
    if !nvrtc_or_skip() {
        return;
    }
    match nvrtc::compile(
        "extern \"C\" __global__ void k() { undefined_symbol; }",
        "broken.cu",
        ARCH,
    ) {
        Err(he_gpu::Error::Compile { log, .. }) => assert!(log.contains("undefined_symbol")),
        other => panic!("expected a compile error, got {other:?}"),
    }
}
