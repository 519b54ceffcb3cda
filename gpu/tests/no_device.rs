//! Without a CUDA driver (CI), opening a device is a typed error, never a panic.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use he_gpu::{Error, GpuContext};

#[test]
fn opening_a_device_never_panics() {
    match GpuContext::new(0) {
        Ok(_) => println!("a CUDA device is present: nothing to check here"),
        Err(e) => {
            println!("GpuContext::new(0) -> {e}");
            assert!(matches!(
                e,
                Error::NoDriver
                    | Error::NoDevice { .. }
                    | Error::CudaDisabled
                    | Error::Driver { .. }
            ));
            if cfg!(feature = "cuda") && !he_gpu_driver_present() {
                assert_eq!(e, Error::NoDriver);
            }
        }
    }
}

#[cfg(feature = "cuda")]
fn he_gpu_driver_present() -> bool {
    he_gpu::driver_present()
}
#[cfg(not(feature = "cuda"))]
fn he_gpu_driver_present() -> bool {
    false
}
