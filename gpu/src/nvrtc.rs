//! Loading NVRTC and compiling the kernel sources to PTX (no GPU or driver needed).
//!
//! cudarc loads `libnvrtc.so.12` with `dlopen` by file name, so it is found through the
//! dynamic loader's search path (`LD_LIBRARY_PATH`, `ldconfig`), not through `CUDA_PATH`.
//! [`preload_nvrtc`] additionally loads it by absolute path from `HE_GPU_NVRTC_LIB` (a file) or
//! from `gpu/.venv` (made by `gpu/scripts/install-nvrtc.sh`); once loaded, the later `dlopen` by
//! name resolves to the same library through its SONAME.

use crate::kernels::{self, KernelSource};
use crate::{Error, Result};
use cudarc::nvrtc::{self, CompileError, CompileOptions, Ptx};
use std::path::PathBuf;
use std::sync::{Mutex, OnceLock};

/// Environment variable naming the NVRTC library file to load (`.../libnvrtc.so.12`).
pub const NVRTC_LIB_ENV: &str = "HE_GPU_NVRTC_LIB";

fn candidates() -> Vec<PathBuf> {
    let mut out = Vec::new();
    if let Some(p) = std::env::var_os(NVRTC_LIB_ENV) {
        out.push(PathBuf::from(p));
    }
    // The venv of gpu/scripts/install-nvrtc.sh, for tests and benches run from this tree.
    let venv = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join(".venv");
    if let Ok(entries) = std::fs::read_dir(venv.join("lib")) {
        for e in entries.flatten() {
            out.push(
                e.path()
                    .join("site-packages/nvidia/cuda_nvrtc/lib/libnvrtc.so.12"),
            );
        }
    }
    out
}

/// Makes NVRTC loadable if it can be found; returns whether it is.
///
/// Tries, in order: the loader's search path (`LD_LIBRARY_PATH` etc.), the file named by
/// `HE_GPU_NVRTC_LIB`, and `gpu/.venv`. A library found by path stays loaded for the life of
/// the process. Never panics.
pub fn preload_nvrtc() -> bool {
    static FOUND: OnceLock<bool> = OnceLock::new();
    *FOUND.get_or_init(|| {
        // SAFETY: `is_culib_present` only tries to dlopen candidate names and drops them.
        if unsafe { nvrtc::sys::is_culib_present() } {
            return true;
        }
        for path in candidates() {
            if !path.is_file() {
                continue;
            }
            // SAFETY: loading NVRTC runs its initialisers, which have no preconditions.
            if let Ok(lib) = unsafe { libloading::Library::new(&path) } {
                // Keep it loaded for the process: cudarc's dlopen by SONAME then finds it.
                std::mem::forget(lib);
                // SAFETY: as above.
                if unsafe { nvrtc::sys::is_culib_present() } {
                    return true;
                }
            }
        }
        false
    })
}

/// NVRTC's version `(major, minor)`, or [`Error::NoNvrtc`].
pub fn nvrtc_version() -> Result<(i32, i32)> {
    if !preload_nvrtc() {
        return Err(Error::NoNvrtc);
    }
    let (mut major, mut minor) = (0, 0);
    // SAFETY: NVRTC is loadable (checked above), and the pointers are valid for writes.
    let r = unsafe { nvrtc::sys::nvrtcVersion(&mut major, &mut minor) };
    if r != nvrtc::sys::nvrtcResult::NVRTC_SUCCESS {
        return Err(Error::Driver {
            operation: "nvrtcVersion",
            message: format!("{r:?}"),
        });
    }
    Ok((major, minor))
}

/// Virtual architecture to compile for, given a compute capability: the highest of the ones
/// NVRTC 12.8 knows that does not exceed it (PTX is JIT-compiled forward by the driver).
pub fn arch_for(major: i32, minor: i32) -> &'static str {
    match (major, minor) {
        (12.., _) => "compute_120",
        (10.., _) => "compute_100",
        (9, _) => "compute_90",
        (8, 9..) => "compute_89",
        (8, 6..) => "compute_86",
        (8, _) => "compute_80",
        _ => "compute_75",
    }
}

/// Compiles `source` (complete CUDA C text) to PTX for `arch` (e.g. `"compute_90"`).
pub fn compile(source: &str, source_name: &'static str, arch: &'static str) -> Result<Ptx> {
    if !preload_nvrtc() {
        return Err(Error::NoNvrtc);
    }
    let opts = CompileOptions {
        arch: Some(arch),
        options: kernels::NVRTC_OPTIONS
            .iter()
            .map(|s| s.to_string())
            .collect(),
        name: Some(source_name.to_string()),
        ..Default::default()
    };
    nvrtc::compile_ptx_with_opts(source, opts).map_err(|e| Error::Compile {
        source_name,
        arch,
        log: match e {
            CompileError::CompileError { log, .. } => log.to_string_lossy().into_owned(),
            other => format!("{other:?}"),
        },
    })
}

/// Compiles one kernel file (with the common header) to PTX text.
pub fn compile_source(src: &KernelSource, arch: &'static str) -> Result<String> {
    compile(&kernels::standalone_source(src), src.name, arch).map(|p| p.to_src())
}

/// The PTX of all kernels for `arch`, compiled once per process and architecture.
pub(crate) fn all_kernels_ptx(arch: &'static str) -> Result<Ptx> {
    static CACHE: Mutex<Vec<(&'static str, Ptx)>> = Mutex::new(Vec::new());
    let mut cache = CACHE.lock().unwrap_or_else(|p| p.into_inner());
    if let Some((_, ptx)) = cache.iter().find(|(a, _)| *a == arch) {
        return Ok(ptx.clone());
    }
    let ptx = compile(&kernels::full_source(), "he-gpu-kernels.cu", arch)?;
    cache.push((arch, ptx.clone()));
    Ok(ptx)
}
