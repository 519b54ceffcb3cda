//! Chebyshev interpolation and the depth-optimal evaluation order.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use he_core::circuits::polynomial::{CleartextBackend, PolynomialEvaluator};
use he_nn::poly::{poly_depth, FittedPoly, PolyFunction};

#[test]
fn depth_is_ceil_log2_of_degree_plus_one() {
    let want = [
        (1, 1),
        (2, 2),
        (3, 2),
        (4, 3),
        (7, 3),
        (8, 4),
        (15, 4),
        (16, 5),
        (31, 5),
    ];
    for (d, k) in want {
        assert_eq!(poly_depth(d), k, "degree {d}");
    }
}

#[test]
fn interpolation_error_decreases_with_the_degree() {
    // SiLU and GELU are analytic: the error falls fast with the degree; ReLU slowly (|x| kink).
    for f in [PolyFunction::Silu, PolyFunction::Gelu, PolyFunction::Relu] {
        let errs: Vec<f64> = [3, 7, 15]
            .iter()
            .map(|d| FittedPoly::fit(f, *d, 6.0).unwrap().max_error)
            .collect();
        println!(
            "{}: max error at degree 3/7/15 on [-6, 6]: {errs:.3?}",
            f.name()
        );
        assert!(errs[0] > errs[1] && errs[1] > errs[2]);
    }
    assert!(
        FittedPoly::fit(PolyFunction::Gelu, 15, 6.0)
            .unwrap()
            .max_error
            < 1e-2
    );
    assert!(
        FittedPoly::fit(PolyFunction::Relu, 15, 6.0)
            .unwrap()
            .max_error
            < 0.2
    );
}

#[test]
fn simulated_evaluation_matches_horner() {
    // he-core's evaluator on cleartext values (the simulator's code path), a 40-bit chain.
    let q: Vec<u64> = (0..8).map(|i| (1u64 << 40) - 87 - 2 * i).collect();
    let be = CleartextBackend::new(&q);
    let pe = PolynomialEvaluator::new(&be);
    for d in 1..=16 {
        let p = FittedPoly::fit(PolyFunction::Silu, d, 4.0).unwrap();
        let us: Vec<f64> = (0..=40).map(|i| i as f64 / 20.0 - 1.0).collect();
        let x = be.value(us.clone(), 7, 2f64.powi(40)).unwrap();
        let y = pe.evaluate(&x, &p.series, 2f64.powi(40)).unwrap();
        assert_eq!(y.level, 7 - p.depth());
        assert!((y.scale / 2f64.powi(40) - 1.0).abs() < 1e-12);
        let m = p.monomial_coeffs();
        for (u, t) in us.iter().zip(&y.values) {
            let horner = m.iter().rev().fold(0.0, |acc, c| acc * u + c);
            assert!((p.eval(u * 4.0) - t).abs() < 1e-9, "degree {d}");
            assert!((horner - t).abs() < 1e-9, "degree {d}");
        }
    }
}
