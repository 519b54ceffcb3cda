//! Circuits above the CKKS scheme (after Lattigo's `circuits/ckks`): linear transforms with
//! pre-encoded diagonals, polynomial evaluation in the Chebyshev basis with exact scale
//! management, and bootstrapping built from both.

pub mod bootstrapping;
pub mod lintrans;
pub mod polynomial;
