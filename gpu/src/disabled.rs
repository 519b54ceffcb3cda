//! Stand-in for the device API when the crate is built without the `cuda` feature.

use crate::{Error, Result};

/// Without the `cuda` feature there is no device support: [`GpuContext::new`] always returns
/// [`Error::CudaDisabled`], so no device object can exist and nothing runs silently on the CPU.
#[derive(Debug)]
pub struct GpuContext {
    _private: (),
}

impl GpuContext {
    /// Always [`Error::CudaDisabled`].
    pub fn new(_ordinal: usize) -> Result<std::sync::Arc<Self>> {
        Err(Error::CudaDisabled)
    }
}
