//! Regression tests for hostile models and data files (issue #16, finding 5): each case once
//! aborted the process on a huge allocation or panicked; now each is a typed error, with no
//! large allocation (a counting global allocator refuses requests over 2 GiB and the tests
//! check the largest request). Written against the API of the original code so that they
//! can be run on it.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod hostile;

use he_nn::data::{read_idx1, read_idx3, read_images};
use he_nn::onnx::{import_onnx, ImportOptions, ModelProto};
use he_nn::Result;
use prost::Message;
use std::panic::{catch_unwind, AssertUnwindSafe};
use std::path::PathBuf;

#[global_allocator]
static ALLOC: hostile::Counting = hostile::Counting;

/// No single allocation may exceed this in these tests.
const SMALL: usize = 16 << 20;

fn mnist() -> ModelProto {
    let b = std::fs::read(PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("models/mnist_cnn.onnx"))
        .unwrap();
    ModelProto::decode(b.as_slice()).unwrap()
}

/// Runs `f`, checking it neither panics nor allocates more than [`SMALL`] at once, and that it
/// fails; returns the error's message.
fn refused<T: std::fmt::Debug>(what: &str, f: impl FnOnce() -> Result<T>) -> String {
    hostile::reset();
    let r = catch_unwind(AssertUnwindSafe(f));
    let big = hostile::biggest();
    let r = r.unwrap_or_else(|_| panic!("{what}: panicked"));
    assert!(big <= SMALL, "{what}: allocated {big} bytes at once");
    let e = r.expect_err(what).to_string();
    println!("{what}: {e} (largest allocation {big} bytes)");
    e
}

fn import(m: &ModelProto) -> Result<he_nn::onnx::ImportedModel> {
    import_onnx(&m.encode_to_vec(), &ImportOptions::default())
}

fn input_dims(m: &mut ModelProto) -> &mut Vec<he_nn::onnx::Dimension> {
    &mut m.graph.as_mut().unwrap().input[0]
        .r#type
        .as_mut()
        .unwrap()
        .tensor_type
        .as_mut()
        .unwrap()
        .shape
        .as_mut()
        .unwrap()
        .dim
}

#[test]
fn onnx_input_dimension_of_2_pow_31_is_refused() {
    // [N, 1, 28, 28] -> [N, 1, 2^31, 28]: the 7x7/3 convolution would have 2.3e10 rows (550 GB).
    for (i, v) in [(2, 1i64 << 31), (3, 1 << 31), (1, 1 << 31), (2, i64::MAX)] {
        let mut m = mnist();
        input_dims(&mut m)[i].dim_value = Some(v);
        let e = refused(&format!("input dim {i} = {v}"), || import(&m));
        assert!(e.contains("exceeds the limit"), "{e}");
        assert!(e.contains("max_tensor_elements"), "{e}");
    }
}

#[test]
fn onnx_pad_of_2_pow_31_is_refused() {
    for (j, v) in [
        (0usize, 1i64 << 31),
        (1, 1 << 31),
        (3, 1 << 31),
        (2, i64::MAX),
        (0, -1),
    ] {
        let mut m = mnist();
        let conv = &mut m.graph.as_mut().unwrap().node[0];
        assert_eq!(conv.op_type, "Conv");
        let pads = conv
            .attribute
            .iter_mut()
            .find(|a| a.name == "pads")
            .unwrap();
        pads.ints[j] = v;
        let e = refused(&format!("pads[{j}] = {v}"), || import(&m));
        assert!(e.contains("pads"), "{e}");
    }
    // Every pad at once, and a stride / dilation / kernel of 2^31 or 0.
    for (attr, v) in [
        ("pads", 1i64 << 31),
        ("strides", 1 << 31),
        ("strides", 0),
        ("dilations", 1 << 31),
        ("dilations", 0),
        ("kernel_shape", 1 << 31),
    ] {
        let mut m = mnist();
        let conv = &mut m.graph.as_mut().unwrap().node[0];
        let a = conv.attribute.iter_mut().find(|a| a.name == attr).unwrap();
        a.ints.iter_mut().for_each(|x| *x = v);
        let e = refused(&format!("{attr} = {v}"), || import(&m));
        assert!(e.contains(attr) || e.contains("kernel"), "{e}");
    }
}

#[test]
fn onnx_initializer_shape_must_match_its_data() {
    // conv1.weight [4, 1, 7, 7] with 196 values: a dimension of 2^31, 0, -1, or dims whose
    // product overflows 64 bits are refused before anything is allocated.
    for dims in [
        vec![1i64 << 31, 1, 7, 7],
        vec![4, 1, 7, 0],
        vec![4, 1, -1, -49],
        vec![i64::MAX, i64::MAX, 1, 1],
        vec![1 << 32, 1 << 32, 1, 1],
        vec![4, 1, 7, 7, 1 << 31],
    ] {
        let mut m = mnist();
        m.graph.as_mut().unwrap().initializer[0].dims = dims.clone();
        let e = refused(&format!("conv weight dims {dims:?}"), || import(&m));
        assert!(e.contains("conv1.weight") || e.contains("Conv"), "{e}");
    }
    // The data one value short.
    let mut m = mnist();
    let w = &mut m.graph.as_mut().unwrap().initializer[0];
    w.raw_data.truncate(w.raw_data.len() - 4);
    let e = refused("conv weight one value short", || import(&m));
    assert!(e.contains("expected 196, found 195"), "{e}");
}

#[test]
fn onnx_zero_sized_kernel_and_gemm_dims_are_refused() {
    // A kernel with a zero dimension (0 weights) used to underflow `kh - 1`.
    let mut m = mnist();
    let g = m.graph.as_mut().unwrap();
    g.initializer[0].dims = vec![4, 1, 0, 7];
    g.initializer[0].raw_data.clear();
    for a in &mut g.node[0].attribute {
        if a.name == "kernel_shape" {
            a.ints = vec![0, 7];
        }
    }
    refused("kernel height 0", || import(&m));
    // fc1.weight [64, 256] declared [0, 256] with no data.
    let mut m = mnist();
    let w = &mut m.graph.as_mut().unwrap().initializer[2];
    w.dims = vec![0, 256];
    w.raw_data.clear();
    refused("Gemm with 0 outputs", || import(&m));
}

fn temp_file(name: &str, bytes: &[u8]) -> PathBuf {
    let p = std::env::temp_dir().join(format!("he-nn-hostile-{}-{name}", std::process::id()));
    std::fs::write(&p, bytes).unwrap();
    p
}

fn idx3_header(n: u32, r: u32, c: u32) -> Vec<u8> {
    [0x0803u32, n, r, c]
        .iter()
        .flat_map(|v| v.to_be_bytes())
        .collect()
}

#[test]
fn idx_header_of_16_bytes_asking_for_24_gb_is_refused() {
    // 2^30 images of 0x0 pixels: 2^30 empty vectors, 24 GiB of vector headers.
    let p = temp_file("24gb.idx3", &idx3_header(1 << 30, 0, 0));
    let e = refused("2^30 images of 0x0", || read_images(&p, 1.0, 0.0));
    assert!(e.contains("1x1"), "{e}");
    // 2^32 - 1 images of 1 row of 0 columns, and of 1x1 (a file of 16 bytes).
    for (n, r, c) in [(u32::MAX, 1, 0), (u32::MAX, 1, 1), (1, u32::MAX, u32::MAX)] {
        let p = temp_file("big.idx3", &idx3_header(n, r, c));
        let e = refused(&format!("{n} images of {r}x{c}"), || {
            read_images(&p, 1.0, 0.0)
        });
        assert!(e.contains("bytes") || e.contains("1x1"), "{e}");
        refused(&format!("{n} images of {r}x{c} (idx3)"), || read_idx3(&p));
    }
}

#[test]
fn idx_header_that_panicked_is_refused() {
    // count·rows·cols = 2^22·2^21·2^21 = 2^64 wraps to 0 (the data slice was then empty and
    // `read_images` indexed past it; with overflow checks the product itself panicked).
    for (n, r, c) in [
        (1u32 << 22, 1u32 << 21, 1u32 << 21),
        (1 << 31, 1 << 31, 4),
        (u32::MAX, u32::MAX, u32::MAX),
    ] {
        let p = temp_file("wrap.idx3", &idx3_header(n, r, c));
        refused(&format!("{n}x{r}x{c} (images)"), || {
            read_images(&p, 1.0, 0.0)
        });
        refused(&format!("{n}x{r}x{c} (idx3)"), || read_idx3(&p));
    }
    // Short files and wrong magic numbers.
    for (name, bytes) in [
        ("empty", vec![]),
        ("3 bytes", vec![0, 0, 8]),
        ("magic only", vec![0, 0, 8, 3]),
        ("idx1 magic", idx3_header(1, 1, 1)[..8].to_vec()),
    ] {
        let p = temp_file("short.idx3", &bytes);
        refused(&format!("{name} (images)"), || read_images(&p, 1.0, 0.0));
    }
    // Labels: a count of 2^32 - 1 in an 8-byte file, a count past the end by one.
    for (n, extra) in [(u32::MAX, 0usize), (5, 4)] {
        let mut b: Vec<u8> = [0x0801u32, n]
            .iter()
            .flat_map(|v| v.to_be_bytes())
            .collect();
        b.extend(std::iter::repeat_n(1, extra));
        let p = temp_file("labels.idx1", &b);
        refused(&format!("{n} labels, {extra} bytes"), || read_idx1(&p));
    }
}

#[test]
fn idx_header_must_agree_with_the_file_length() {
    // 2 images of 2x3 and one trailing byte: refused (the header and the length disagree).
    let mut b = idx3_header(2, 2, 3);
    b.extend(0..12u8);
    let p = temp_file("exact.idx3", &b);
    let (n, r, c, px) = read_idx3(&p).unwrap();
    assert_eq!((n, r, c, px), (2, 2, 3, (0..12).collect::<Vec<u8>>()));
    let imgs = read_images(&p, 0.5, 1.0).unwrap();
    assert_eq!(imgs.len(), 2);
    assert_eq!(imgs[1], vec![4.0, 4.5, 5.0, 5.5, 6.0, 6.5]);
    b.push(0);
    let p = temp_file("trailing.idx3", &b);
    let e = refused("a trailing byte", || read_idx3(&p));
    assert!(e.contains("28 bytes"), "{e}");
    // The shipped samples still read.
    let root = PathBuf::from(env!("CARGO_MANIFEST_DIR"));
    assert_eq!(
        read_images(&root.join("data/mnist_sample.idx3"), 1.0, 0.0)
            .unwrap()
            .len(),
        64
    );
    assert_eq!(
        read_idx1(&root.join("data/mnist_sample_labels.idx1"))
            .unwrap()
            .len(),
        64
    );
}

#[test]
fn onnx_huge_dilation_with_a_huge_pad_is_refused() {
    // Found by the mutation test: dilation 2^62 with a pad of 2^63 - 1 satisfied "pad <= dilated
    // kernel extent <= padded input" and the output was 6 wide, but the lowering's index
    // arithmetic overflowed. The padded input is now bounded by `max_tensor_elements`.
    for (dilation, pad) in [
        (1i64 << 62, i64::MAX),
        (1 << 40, 1 << 41),
        (1 << 31, 1 << 31),
    ] {
        let mut m = ModelProto::decode(hostile::tiny_model().as_slice()).unwrap();
        let conv = &mut m.graph.as_mut().unwrap().node[0];
        for a in &mut conv.attribute {
            match a.name.as_str() {
                "dilations" => a.ints[1] = dilation,
                "pads" => a.ints[1] = pad,
                _ => {}
            }
        }
        let e = refused(&format!("dilation {dilation}, pad {pad}"), || import(&m));
        assert!(e.contains("padded input"), "{e}");
    }
}
