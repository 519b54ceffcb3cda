//! CUDA C sources of every kernel, embedded at build time (`gpu/kernels/*.cu`).
//!
//! Each source is compiled by NVRTC as [`COMMON`] followed by the source itself; the device
//! context compiles them all as one program ([`full_source`]) at first use. This module needs no
//! CUDA and is always built, so the sources can be inspected and compile-tested anywhere.

/// Shared definitions: 64-bit modular arithmetic (Barrett via `__umul64hi`, Shoup), the
/// per-modulus constant record `ModParams`, 128-bit accumulation.
pub const COMMON: &str = include_str!("../kernels/common.cuh");
/// Batched negacyclic NTT / inverse NTT (Cooley–Tukey / Gentleman–Sande, Longa–Naehrig 2016).
pub const NTT: &str = include_str!("../kernels/ntt.cu");
/// Element-wise add / sub / neg / mul / multiply-accumulate / scalar products, automorphisms.
pub const ELEMENTWISE: &str = include_str!("../kernels/elementwise.cu");
/// Fast base conversion (Bajard et al. 2016 / HPS 2019) and the key-switching inner product
/// (Han–Ki 2020).
pub const RNS: &str = include_str!("../kernels/rns.cu");

/// A kernel source file and the entry points (`extern "C" __global__`) it defines.
#[derive(Debug, Clone, Copy)]
pub struct KernelSource {
    /// File name under `gpu/kernels/`.
    pub name: &'static str,
    /// The CUDA C text (without [`COMMON`]).
    pub source: &'static str,
    /// Entry points it defines.
    pub entries: &'static [&'static str],
}

/// Largest `log2(N / C)` handled by the strided NTT pass (`R = N / C <= 32`).
pub const MAX_STRIDED_LOG: u32 = 5;
/// `log2` of the shared-memory chunk `C` of the NTT (`C = min(N, 2^12)`, 32 KiB of words).
pub const NTT_CHUNK_LOG: u32 = 12;

/// Every source with its entry points.
pub const SOURCES: &[KernelSource] = &[
    KernelSource {
        name: "ntt.cu",
        source: NTT,
        entries: &[
            "ntt_fwd_shared",
            "ntt_inv_shared",
            "ntt_fwd_strided_r1",
            "ntt_fwd_strided_r2",
            "ntt_fwd_strided_r3",
            "ntt_fwd_strided_r4",
            "ntt_fwd_strided_r5",
            "ntt_inv_strided_r1",
            "ntt_inv_strided_r2",
            "ntt_inv_strided_r3",
            "ntt_inv_strided_r4",
            "ntt_inv_strided_r5",
        ],
    },
    KernelSource {
        name: "elementwise.cu",
        source: ELEMENTWISE,
        entries: &[
            "poly_add",
            "poly_sub",
            "poly_neg",
            "poly_mul",
            "poly_mul_acc",
            "poly_mul_scalar",
            "poly_sub_mul_scalar",
            "automorphism_eval",
            "automorphism_coeff",
        ],
    },
    KernelSource {
        name: "rns.cu",
        source: RNS,
        entries: &["base_convert", "ks_inner_product"],
    },
];

/// [`COMMON`] followed by one source: what NVRTC compiles for a single file.
pub fn standalone_source(src: &KernelSource) -> String {
    format!("{COMMON}\n#line 1 \"{}\"\n{}", src.name, src.source)
}

/// [`COMMON`] followed by every source: the one program a device context compiles.
pub fn full_source() -> String {
    let mut s = String::from(COMMON);
    for src in SOURCES {
        s.push_str(&format!("\n#line 1 \"{}\"\n", src.name));
        s.push_str(src.source);
    }
    s
}

/// NVRTC options used for every compilation (besides the architecture).
pub const NVRTC_OPTIONS: &[&str] = &["--std=c++17"];

/// Grid and block of one kernel launch (what the device code uses and the tests replay).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct LaunchShape {
    /// Entry point.
    pub kernel: &'static str,
    /// Grid dimensions (blocks).
    pub grid: (u32, u32, u32),
    /// Threads per block (x only).
    pub block: u32,
    /// Dynamic shared memory per block, in bytes.
    pub shared_bytes: u32,
}

/// The launches of a batched NTT of `rows` limbs of degree `2^log_n`, in order: forward =
/// strided pass (if `N > 2^12`) then shared-memory pass; inverse = the reverse. All take the
/// same arguments (`data, tw, tw_shoup, params, limb_mod, limbs, log_n, log_c, rows`), with
/// `log_c` = [`ntt_chunk_log`]. `None` when the degree or the batch is too large.
pub fn ntt_launches(log_n: u32, rows: u64, forward: bool) -> Option<Vec<LaunchShape>> {
    const FWD: [&str; 5] = [
        "ntt_fwd_strided_r1",
        "ntt_fwd_strided_r2",
        "ntt_fwd_strided_r3",
        "ntt_fwd_strided_r4",
        "ntt_fwd_strided_r5",
    ];
    const INV: [&str; 5] = [
        "ntt_inv_strided_r1",
        "ntt_inv_strided_r2",
        "ntt_inv_strided_r3",
        "ntt_inv_strided_r4",
        "ntt_inv_strided_r5",
    ];
    let log_c = ntt_chunk_log(log_n);
    let log_r = log_n - log_c;
    if log_n == 0 || log_r > MAX_STRIDED_LOG || rows == 0 {
        return None;
    }
    let chunk = 1u32 << log_c;
    let shared_blocks = u32::try_from(rows.checked_shl(log_n - log_c)?).ok()?;
    let strided_blocks = u32::try_from((rows.checked_shl(log_c)?).div_ceil(256)).ok()?;
    if shared_blocks > i32::MAX as u32 || strided_blocks > i32::MAX as u32 {
        return None;
    }
    let shared = LaunchShape {
        kernel: if forward {
            "ntt_fwd_shared"
        } else {
            "ntt_inv_shared"
        },
        grid: (shared_blocks, 1, 1),
        block: (chunk / 2).clamp(1, 512),
        shared_bytes: chunk * 8,
    };
    let mut out = vec![shared];
    if log_r > 0 {
        let names = if forward { &FWD } else { &INV };
        let strided = LaunchShape {
            kernel: names[(log_r - 1) as usize],
            grid: (strided_blocks, 1, 1),
            block: 256,
            shared_bytes: 0,
        };
        if forward {
            out.insert(0, strided);
        } else {
            out.push(strided);
        }
    }
    Some(out)
}

/// `log2` of the NTT's shared-memory chunk for degree `2^log_n`: `min(log_n, 12)`.
pub fn ntt_chunk_log(log_n: u32) -> u32 {
    log_n.min(NTT_CHUNK_LOG)
}

/// Output limbs per thread of `base_convert` (`BC_TILE` in `kernels/rns.cu`).
pub const BASE_CONVERT_TILE: usize = 8;

/// The launch of `base_convert` for `polys` polynomials of degree `n` into `kb` limbs
/// (`None` beyond the grid's y limit of 65535).
pub fn base_convert_launch(n: usize, polys: usize, kb: usize) -> Option<LaunchShape> {
    let grid_y = polys.checked_mul(kb.div_ceil(BASE_CONVERT_TILE))?;
    if grid_y == 0 || grid_y > 65535 {
        return None;
    }
    Some(LaunchShape {
        kernel: "base_convert",
        grid: ((n as u32).div_ceil(256), grid_y as u32, 1),
        block: (n as u32).min(256),
        shared_bytes: 0,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_entry_is_defined_once_as_extern_c() {
        let full = full_source();
        for src in SOURCES {
            for e in src.entries {
                let direct = format!("__global__ void {e}(");
                let macro_made = e
                    .strip_suffix(|c: char| c.is_ascii_digit())
                    .and_then(|s| s.strip_suffix("_r"))
                    .map(|stem| full.contains(&format!("{stem}_r##K(")));
                assert!(
                    full.matches(&direct).count() == 1 || macro_made == Some(true),
                    "{e} not defined in {}",
                    src.name
                );
            }
        }
    }
}
