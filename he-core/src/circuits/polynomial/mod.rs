//! Polynomial evaluation in the Chebyshev basis with exact scale management.
