//! Everything that touches a device (feature `cuda`).

pub mod backend;
pub mod context;
pub mod poly;
pub mod ring;
pub mod rns;
