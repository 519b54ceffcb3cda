//! Linear transforms with pre-encoded diagonals (BSGS, hoisted and double-hoisted rotations).
