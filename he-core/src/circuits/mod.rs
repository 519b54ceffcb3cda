//! Circuits above the CKKS scheme (after Lattigo's `circuits/ckks`): linear transforms with
//! pre-encoded diagonals, polynomial evaluation in the Chebyshev basis with exact scale
//! management, bootstrapping built from both, and the [`weights::WeightProvider`] seam that
//! serves pre-encoded weights by name (in memory or from a store).

pub mod bootstrapping;
pub mod lintrans;
pub mod polynomial;
pub mod spill;
pub mod weights;
