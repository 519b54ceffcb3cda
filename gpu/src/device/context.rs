//! The device context: one CUDA device, one stream, the compiled kernels.

use crate::nvrtc;
use crate::{Error, Result};
use cudarc::driver::sys::CUdevice_attribute as Attr;
use cudarc::driver::{
    CudaContext, CudaFunction, CudaModule, CudaStream, DriverError, LaunchConfig,
};
use std::collections::HashMap;
use std::sync::{Arc, Mutex};

/// Maps a driver error to [`Error::Driver`] naming the operation.
pub(crate) fn drv(operation: &'static str) -> impl FnOnce(DriverError) -> Error {
    move |e| Error::Driver {
        operation,
        message: format!("{e:?}"),
    }
}

/// Whether the CUDA driver library (`libcuda.so`) can be loaded. Never panics.
pub fn driver_present() -> bool {
    // SAFETY: only tries to dlopen the candidate names.
    unsafe { cudarc::driver::sys::is_culib_present() }
}

/// Number of CUDA devices, or [`Error::NoDriver`] when there is no driver.
pub fn device_count() -> Result<usize> {
    if !driver_present() {
        return Err(Error::NoDriver);
    }
    match CudaContext::device_count() {
        Ok(c) => Ok(c.max(0) as usize),
        Err(e) if e.0 == cudarc::driver::sys::cudaError_enum::CUDA_ERROR_NO_DEVICE => Ok(0),
        Err(e) => Err(drv("cuDeviceGetCount")(e)),
    }
}

/// What the benchmark and the launch heuristics need to know about a device.
#[derive(Debug, Clone, PartialEq)]
pub struct DeviceInfo {
    /// Device ordinal.
    pub ordinal: usize,
    /// Marketing name ("NVIDIA H100 80GB HBM3").
    pub name: String,
    /// Compute capability `(major, minor)`.
    pub compute_capability: (i32, i32),
    /// Streaming multiprocessors.
    pub sm_count: u32,
    /// Global memory in bytes.
    pub total_memory: usize,
    /// Peak DRAM (HBM) bandwidth in bytes per second.
    pub memory_bandwidth: f64,
    /// How [`memory_bandwidth`](Self::memory_bandwidth) was obtained.
    pub bandwidth_source: &'static str,
    /// The NVRTC virtual architecture the kernels are compiled for.
    pub arch: &'static str,
}

/// Documented peak HBM bandwidths, used when the device attributes do not give one:
/// H100 SXM5 3.35 TB/s, H200 4.8 TB/s (NVIDIA data sheets).
pub fn documented_bandwidth(name: &str) -> Option<f64> {
    if name.contains("H200") {
        Some(4.8e12)
    } else if name.contains("H100") {
        Some(3.35e12)
    } else {
        None
    }
}

/// The compiled kernels of one context, by entry-point name.
pub(crate) struct Kernels {
    _module: Arc<CudaModule>,
    functions: HashMap<&'static str, CudaFunction>,
}

impl Kernels {
    pub(crate) fn get(&self, name: &'static str) -> Result<&CudaFunction> {
        self.functions
            .get(name)
            .ok_or_else(|| Error::Unsupported(format!("kernel {name} not loaded")))
    }
}

/// An explicitly chosen CUDA device with its stream and (lazily compiled) kernels.
///
/// Every operation of the crate on data of this context is issued on its one stream, in order;
/// nothing ever falls back to the CPU: without a driver or device, [`GpuContext::new`] fails and
/// no device object can exist. Kernels are compiled by NVRTC on first use (once per process and
/// architecture) and loaded once per context.
pub struct GpuContext {
    ctx: Arc<CudaContext>,
    stream: Arc<CudaStream>,
    info: DeviceInfo,
    kernels: Mutex<Option<Arc<Kernels>>>,
}

impl std::fmt::Debug for GpuContext {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("GpuContext")
            .field("info", &self.info)
            .finish()
    }
}

impl GpuContext {
    /// Opens device `ordinal` (its primary context) and creates a stream.
    ///
    /// Errors: [`Error::NoDriver`] without `libcuda.so`, [`Error::NoDevice`] for a missing
    /// ordinal, [`Error::Driver`] when the driver refuses. Never panics.
    pub fn new(ordinal: usize) -> Result<Arc<Self>> {
        let count = device_count()?;
        if ordinal >= count {
            return Err(Error::NoDevice { ordinal, count });
        }
        let ctx = CudaContext::new(ordinal).map_err(drv("cuCtx (primary) retain"))?;
        let stream = ctx.new_stream().map_err(drv("cuStreamCreate"))?;
        let name = ctx.name().map_err(drv("cuDeviceGetName"))?;
        let cc = ctx
            .compute_capability()
            .map_err(drv("cuDeviceGetAttribute(compute capability)"))?;
        let sm_count = ctx
            .attribute(Attr::CU_DEVICE_ATTRIBUTE_MULTIPROCESSOR_COUNT)
            .map_err(drv("cuDeviceGetAttribute(SM count)"))?;
        let total_memory = ctx.total_mem().map_err(drv("cuDeviceTotalMem"))?;
        // Peak bandwidth = 2 (double data rate) x memory clock x bus width.
        let clock_khz = ctx
            .attribute(Attr::CU_DEVICE_ATTRIBUTE_MEMORY_CLOCK_RATE)
            .unwrap_or(0);
        let bus_bits = ctx
            .attribute(Attr::CU_DEVICE_ATTRIBUTE_GLOBAL_MEMORY_BUS_WIDTH)
            .unwrap_or(0);
        let (memory_bandwidth, bandwidth_source) = if clock_khz > 0 && bus_bits > 0 {
            (
                2.0 * clock_khz as f64 * 1e3 * bus_bits as f64 / 8.0,
                "device attributes: 2 x memory clock x bus width",
            )
        } else if let Some(bw) = documented_bandwidth(&name) {
            (bw, "documented constant for this device")
        } else {
            (0.0, "unknown")
        };
        let info = DeviceInfo {
            ordinal,
            name,
            compute_capability: cc,
            sm_count: sm_count.max(1) as u32,
            total_memory,
            memory_bandwidth,
            bandwidth_source,
            arch: nvrtc::arch_for(cc.0, cc.1),
        };
        Ok(Arc::new(Self {
            ctx,
            stream,
            info,
            kernels: Mutex::new(None),
        }))
    }

    /// The device's properties.
    pub fn info(&self) -> &DeviceInfo {
        &self.info
    }

    /// The stream every operation of this context is issued on (for events and interop).
    pub fn stream(&self) -> &Arc<CudaStream> {
        &self.stream
    }

    /// The underlying cudarc context.
    pub fn cuda(&self) -> &Arc<CudaContext> {
        &self.ctx
    }

    /// Blocks until all work issued on the stream is done; reports asynchronous kernel errors.
    pub fn synchronize(&self) -> Result<()> {
        self.stream
            .synchronize()
            .map_err(drv("cuStreamSynchronize"))
    }

    /// Compiles (NVRTC, first use in the process) and loads (first use in this context) every
    /// kernel. Called implicitly by the operations; call it up front to keep compilation out of
    /// timings.
    pub fn load_kernels(&self) -> Result<()> {
        self.kernels().map(|_| ())
    }

    pub(crate) fn kernels(&self) -> Result<Arc<Kernels>> {
        let mut slot = self.kernels.lock().unwrap_or_else(|p| p.into_inner());
        if let Some(k) = slot.as_ref() {
            return Ok(k.clone());
        }
        let ptx = nvrtc::all_kernels_ptx(self.info.arch)?;
        let module = self.ctx.load_module(ptx).map_err(drv("cuModuleLoadData"))?;
        let mut functions = HashMap::new();
        for src in crate::kernels::SOURCES {
            for &e in src.entries {
                let f = module
                    .load_function(e)
                    .map_err(drv("cuModuleGetFunction"))?;
                functions.insert(e, f);
            }
        }
        let k = Arc::new(Kernels {
            _module: module,
            functions,
        });
        *slot = Some(k.clone());
        Ok(k)
    }

    /// A 1-D grid-stride configuration for `total` independent words.
    pub(crate) fn words_config(&self, total: u64) -> LaunchConfig {
        let threads = 256u64;
        let max_blocks = self.info.sm_count as u64 * 32;
        let blocks = total.div_ceil(threads).clamp(1, max_blocks.max(1));
        LaunchConfig {
            grid_dim: (blocks as u32, 1, 1),
            block_dim: (threads as u32, 1, 1),
            shared_mem_bytes: 0,
        }
    }
}
