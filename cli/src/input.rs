//! Inputs (`.npy`, IDX, a folder of PNG images), labels, and prediction files.

use crate::error::{fail, io_ctx, Context, Result};
use crate::files::read;
use std::path::Path;

/// Raw inputs as read: integer pixels get the model's preprocessing, floats are taken as is.
#[derive(Debug, Clone)]
pub struct Inputs {
    /// One flat vector per input, already preprocessed.
    pub rows: Vec<Vec<f64>>,
    /// What was read (for reports).
    pub kind: &'static str,
}

fn be32(b: &[u8], at: usize) -> Option<usize> {
    b.get(at..at + 4)
        .map(|s| u32::from_be_bytes([s[0], s[1], s[2], s[3]]) as usize)
}

/// Reads inputs from `path`: a `.npy` array (`uint8`, `float32` or `float64`, C order, first
/// axis = images), an IDX ubyte file (MNIST format), or a directory of 8-bit PNG images
/// (sorted by name). Integer data is mapped by `x * scale + shift`; every input must have
/// `input_len` values.
pub fn read_inputs(path: &Path, input_len: usize, scale: f64, shift: f64) -> Result<Inputs> {
    let (rows, kind) = if path.is_dir() {
        (read_png_dir(path, scale, shift)?, "PNG folder")
    } else {
        let b = read(path)?;
        if b.starts_with(b"\x93NUMPY") {
            (read_npy(&b, path, scale, shift)?, "npy")
        } else if b.len() >= 4 && b[0] == 0 && b[1] == 0 && b[2] == 0x08 {
            (read_idx(&b, path, scale, shift)?, "IDX")
        } else {
            return fail(format!(
                "{}: not a .npy array, an IDX ubyte file or a folder of PNG images",
                path.display()
            ));
        }
    };
    if rows.is_empty() {
        return fail(format!("{}: no inputs", path.display()));
    }
    if let Some((i, r)) = rows.iter().enumerate().find(|(_, r)| r.len() != input_len) {
        return fail(format!(
            "{}: input {i} has {} values, the model takes {input_len}",
            path.display(),
            r.len()
        ));
    }
    Ok(Inputs { rows, kind })
}

fn read_idx(b: &[u8], path: &Path, scale: f64, shift: f64) -> Result<Vec<Vec<f64>>> {
    let dims = b.get(3).copied().unwrap_or(0) as usize;
    if dims == 0 {
        return fail(format!("{}: IDX file with no dimensions", path.display()));
    }
    let head = 4 + 4 * dims;
    let shape: Vec<usize> = (0..dims)
        .map(|i| be32(b, 4 + 4 * i))
        .collect::<Option<_>>()
        .map_or_else(
            || fail(format!("{}: truncated IDX header", path.display())),
            Ok,
        )?;
    let n = shape[0];
    let per: usize = shape[1..].iter().product();
    let want = n.checked_mul(per).and_then(|v| v.checked_add(head));
    if want != Some(b.len()) {
        return fail(format!(
            "{}: IDX shape {shape:?} needs {} bytes, the file has {} (truncated?)",
            path.display(),
            want.map_or("too many".into(), |w| w.to_string()),
            b.len()
        ));
    }
    Ok(b[head..]
        .chunks(per.max(1))
        .map(|c| c.iter().map(|p| *p as f64 * scale + shift).collect())
        .collect())
}

/// The parsed header of a `.npy` file.
struct Npy<'a> {
    descr: String,
    shape: Vec<usize>,
    data: &'a [u8],
}

fn parse_npy<'a>(b: &'a [u8], path: &Path) -> Result<Npy<'a>> {
    let bad = |why: &str| fail(format!("{}: {why}", path.display()));
    if b.len() < 10 {
        return bad("truncated .npy header");
    }
    let (hlen, start) = match b[6] {
        1 => (u16::from_le_bytes([b[8], b[9]]) as usize, 10),
        2 | 3 if b.len() >= 12 => (u32::from_le_bytes([b[8], b[9], b[10], b[11]]) as usize, 12),
        v => return bad(&format!("unsupported .npy version {v}")),
    };
    let Some(h) = b.get(start..start + hlen) else {
        return bad("truncated .npy header");
    };
    let h = String::from_utf8_lossy(h).to_string();
    let field = |k: &str| -> Option<String> {
        let i = h.find(&format!("'{k}'"))?;
        let rest = h[i + k.len() + 2..]
            .trim_start()
            .strip_prefix(':')?
            .trim_start();
        Some(rest.to_string())
    };
    let descr = field("descr")
        .and_then(|r| r.split('\'').nth(1).map(str::to_string))
        .unwrap_or_default();
    if field("fortran_order").is_some_and(|r| r.starts_with("True")) {
        return bad("Fortran-ordered .npy arrays are not supported; save with C order");
    }
    let shape: Vec<usize> = match field("shape") {
        Some(r) => {
            let inner = r
                .strip_prefix('(')
                .and_then(|x| x.split(')').next())
                .unwrap_or("");
            inner
                .split(',')
                .map(str::trim)
                .filter(|s| !s.is_empty())
                .map(|s| s.parse::<usize>())
                .collect::<std::result::Result<_, _>>()
                .ctx(format!("{}: .npy shape", path.display()))?
        }
        None => return bad("no shape in the .npy header"),
    };
    Ok(Npy {
        descr,
        shape,
        data: &b[start + hlen..],
    })
}

fn read_npy(b: &[u8], path: &Path, scale: f64, shift: f64) -> Result<Vec<Vec<f64>>> {
    let npy = parse_npy(b, path)?;
    let n = npy.shape.first().copied().unwrap_or(1);
    let per: usize = npy.shape.iter().skip(1).product();
    let (width, conv): (usize, fn(&[u8]) -> f64) = match npy.descr.as_str() {
        "|u1" | "<u1" => (1, |c| c[0] as f64),
        "<f4" => (4, |c| f32::from_le_bytes([c[0], c[1], c[2], c[3]]) as f64),
        "<f8" => (8, |c| {
            let mut a = [0u8; 8];
            a.copy_from_slice(c);
            f64::from_le_bytes(a)
        }),
        d => {
            return fail(format!(
                "{}: .npy dtype {d:?}, expected uint8, float32 or float64",
                path.display()
            ))
        }
    };
    let want = n * per * width;
    if npy.data.len() != want {
        return fail(format!(
            "{}: .npy shape {:?} needs {want} data bytes, the file has {} (truncated?)",
            path.display(),
            npy.shape,
            npy.data.len()
        ));
    }
    let integer = width == 1;
    Ok(npy
        .data
        .chunks(per.max(1) * width)
        .map(|row| {
            row.chunks(width)
                .map(|c| {
                    let v = conv(c);
                    if integer {
                        v * scale + shift
                    } else {
                        v
                    }
                })
                .collect()
        })
        .collect())
}

fn read_png_dir(dir: &Path, scale: f64, shift: f64) -> Result<Vec<Vec<f64>>> {
    let mut files: Vec<_> = std::fs::read_dir(dir)
        .ctx(io_ctx("listing", dir))?
        .filter_map(|e| e.ok().map(|e| e.path()))
        .filter(|p| p.extension().is_some_and(|e| e.eq_ignore_ascii_case("png")))
        .collect();
    files.sort();
    if files.is_empty() {
        return fail(format!("{}: no .png files", dir.display()));
    }
    files
        .iter()
        .map(|f| {
            let file = std::fs::File::open(f).ctx(io_ctx("opening", f))?;
            let mut dec = png::Decoder::new(std::io::BufReader::new(file));
            dec.set_transformations(png::Transformations::EXPAND | png::Transformations::STRIP_16);
            let mut r = dec.read_info().ctx(io_ctx("decoding", f))?;
            let mut buf = vec![0u8; r.output_buffer_size()];
            let info = r.next_frame(&mut buf).ctx(io_ctx("decoding", f))?;
            let px = &buf[..info.buffer_size()];
            let ch = info.color_type.samples();
            // Grayscale as is; colour images by their mean over the colour channels (alpha dropped).
            let colour = match info.color_type {
                png::ColorType::Grayscale | png::ColorType::GrayscaleAlpha => 1,
                _ => 3,
            };
            Ok(px
                .chunks(ch)
                .map(|p| {
                    let v = p[..colour].iter().map(|x| *x as f64).sum::<f64>() / colour as f64;
                    v * scale + shift
                })
                .collect())
        })
        .collect()
}

/// Reads labels: IDX1 ubyte, `.npy` (uint8 / int64 / int32), or text with one integer a line.
pub fn read_labels(path: &Path) -> Result<Vec<usize>> {
    let b = read(path)?;
    if b.len() >= 4 && b[..4] == [0, 0, 8, 1] {
        let n = be32(&b, 4).unwrap_or(0);
        if b.len() != 8 + n {
            return fail(format!(
                "{}: IDX1 header says {n} labels, the file has {} bytes (truncated?)",
                path.display(),
                b.len()
            ));
        }
        return Ok(b[8..].iter().map(|v| *v as usize).collect());
    }
    if b.starts_with(b"\x93NUMPY") {
        let npy = parse_npy(&b, path)?;
        let (w, signed) = match npy.descr.as_str() {
            "|u1" | "<u1" => (1, false),
            "<i4" => (4, true),
            "<i8" => (8, true),
            d => return fail(format!("{}: label dtype {d:?} unsupported", path.display())),
        };
        let n: usize = npy.shape.iter().product();
        if npy.data.len() != n * w {
            return fail(format!("{}: truncated .npy labels", path.display()));
        }
        return npy
            .data
            .chunks(w)
            .map(|c| {
                let v = match (w, signed) {
                    (1, _) => c[0] as i64,
                    (4, _) => i32::from_le_bytes([c[0], c[1], c[2], c[3]]) as i64,
                    _ => {
                        let mut a = [0u8; 8];
                        a.copy_from_slice(c);
                        i64::from_le_bytes(a)
                    }
                };
                usize::try_from(v).map_or_else(
                    |_| fail(format!("{}: negative label {v}", path.display())),
                    Ok,
                )
            })
            .collect();
    }
    String::from_utf8_lossy(&b)
        .lines()
        .map(str::trim)
        .filter(|l| !l.is_empty())
        .map(|l| {
            l.split(',')
                .next_back()
                .unwrap_or(l)
                .trim()
                .parse::<usize>()
                .ctx(format!("{}: label {l:?}", path.display()))
        })
        .collect()
}

/// Index of the largest value.
pub fn argmax(v: &[f64]) -> usize {
    he_nn::data::argmax(v)
}

/// Prediction file contents: CSV (`image,prediction,logit_0,...`) or `.npy` (`float64`
/// logits, shape `[images, outputs]`), by the extension of `path`.
pub fn encode_predictions(path: &Path, logits: &[Vec<f64>]) -> Result<Vec<u8>> {
    let ext = path
        .extension()
        .map(|e| e.to_string_lossy().to_ascii_lowercase())
        .unwrap_or_default();
    let width = logits.first().map_or(0, Vec::len);
    match ext.as_str() {
        "csv" => {
            let mut s = String::from("image,prediction");
            for j in 0..width {
                s += &format!(",logit_{j}");
            }
            s.push('\n');
            for (i, l) in logits.iter().enumerate() {
                s += &format!("{i},{}", argmax(l));
                for v in l {
                    s += &format!(",{v:.6}");
                }
                s.push('\n');
            }
            Ok(s.into_bytes())
        }
        "npy" => {
            let mut h = format!(
                "{{'descr': '<f8', 'fortran_order': False, 'shape': ({}, {width}), }}",
                logits.len()
            );
            while !(10 + h.len() + 1).is_multiple_of(64) {
                h.push(' ');
            }
            h.push('\n');
            let mut out = b"\x93NUMPY\x01\x00".to_vec();
            out.extend_from_slice(&(h.len() as u16).to_le_bytes());
            out.extend_from_slice(h.as_bytes());
            for v in logits.iter().flatten() {
                out.extend_from_slice(&v.to_le_bytes());
            }
            Ok(out)
        }
        _ => fail(format!(
            "{}: output must end in .csv or .npy",
            path.display()
        )),
    }
}

/// Reads a JSON list of lists of numbers (reference logits, e.g. onnxruntime's).
pub fn read_reference_logits(path: &Path) -> Result<Vec<Vec<f64>>> {
    serde_json::from_slice(&read(path)?).ctx(io_ctx("parsing", path))
}
