//! Client / server with HomE's Rust API: what `home keygen/encrypt/infer/decrypt` do, in code.
//!
//! ```text
//! cargo run --release -p home-cli --example client_server [WORKDIR]
//! ```
//!
//! The client (the data owner) plans the committed MNIST CNN, generates keys, writes the
//! server's share — parameters and evaluation keys in a pmem-store, encrypted images as
//! serialized ciphertexts — into `WORKDIR/server`, and keeps the secret key in
//! `WORKDIR/client`. The server function is given `WORKDIR/server` only: it re-plans the model
//! under the stored parameters, serves the evaluation keys from the memory-mapped store, and
//! writes encrypted results. The client decrypts them and compares with onnxruntime.

use he_core::ckks::{Ciphertext, Decryptor, Encoder, Encryptor};
use he_core::rlwe::Parameters;
use he_core::serialize::{secret_key_from_bytes, secret_key_to_bytes, Serializable};
use he_nn::data::{argmax, read_images, read_logits_json};
use he_nn::onnx::load_onnx;
use he_nn::plan::PackedLayout;
use he_nn::{EncryptedTensor, Engine, Mode, Plan, PlanOptions, TensorLayout};
use pmem_store::{ObjectMeta, ObjectType, PmemKeyStore, Store, StoreConfig};
use std::error::Error;
use std::path::{Path, PathBuf};
use std::sync::Arc;

type R<T> = Result<T, Box<dyn Error>>;
const IMAGES: usize = 8;

fn repo() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("..")
}

fn options(params: Option<Arc<Parameters>>) -> PlanOptions {
    let mut o = PlanOptions::new(Mode::Latency);
    o.log_n = Some(13);
    o.min_scale_bits = 24;
    o.parameters = params;
    o
}

/// Client, step 1: plan, keys, and the server's share of them; encrypted inputs.
fn client_setup(model: &Path, client: &Path, server: &Path, images: &[Vec<f64>]) -> R<()> {
    let net = load_onnx(model, &Default::default())?.network;
    let plan = Plan::new(&net, &options(None))?;
    let keys = plan.generate_keys()?;
    std::fs::write(
        client.join("secret.key"),
        secret_key_to_bytes(&keys.secret).as_slice(),
    )?;
    std::fs::write(server.join("params.bin"), plan.params.to_bytes())?;
    // Evaluation keys: exactly the plan's, one store object each (relinearization + Galois).
    let store = Store::create(
        server.join("keys"),
        StoreConfig::new(Some(plan.params.hash())),
    )?;
    store.put(
        "public",
        &ObjectMeta::new(ObjectType::Bytes, plan.params.hash()),
        &keys.public.to_bytes(),
    )?;
    let ks = PmemKeyStore::new(Arc::new(store), "");
    let kg = he_core::rlwe::KeyGenerator::new(&keys.secret);
    ks.insert(&kg.relinearization_key()?)?;
    for g in &plan.galois_elements {
        ks.insert(&kg.galois_key(*g)?)?;
    }
    println!(
        "client: {} evaluation keys ({} Galois) into {}",
        1 + plan.galois_elements.len(),
        plan.galois_elements.len(),
        server.join("keys").display()
    );
    let encoder = Encoder::new(&plan.params)?;
    let encryptor = Encryptor::new(&plan.params, keys.public.clone())?;
    for (i, x) in images.iter().enumerate() {
        let ct = plan.encrypt(&encoder, &encryptor, std::slice::from_ref(x))?;
        let blobs: Vec<Vec<u8>> = ct.cts.iter().map(|c| c.to_bytes()).collect();
        std::fs::write(server.join(format!("in-{i}.ct")), concat(&blobs))?;
    }
    Ok(())
}

fn concat(blobs: &[Vec<u8>]) -> Vec<u8> {
    let mut out = Vec::new();
    for b in blobs {
        out.extend_from_slice(&(b.len() as u64).to_le_bytes());
        out.extend_from_slice(b);
    }
    out
}

fn split(bytes: &[u8]) -> R<Vec<&[u8]>> {
    let mut out = Vec::new();
    let mut at = 0;
    while at < bytes.len() {
        let len = bytes
            .get(at..at + 8)
            .and_then(|b| b.try_into().ok())
            .map(u64::from_le_bytes)
            .ok_or("truncated length")? as usize;
        out.push(
            bytes
                .get(at + 8..at + 8 + len)
                .ok_or("truncated ciphertext")?,
        );
        at += 8 + len;
    }
    Ok(out)
}

/// Server: sees `server` only (no secret key exists there).
fn server_run(model: &Path, server: &Path) -> R<()> {
    let params = Parameters::from_bytes(&std::fs::read(server.join("params.bin"))?)?;
    let net = load_onnx(model, &Default::default())?.network;
    let plan = Plan::new(&net, &options(Some(params.clone())))?;
    let store = Store::open(
        server.join("keys"),
        StoreConfig::new(Some(params.hash())).read_only(true),
    )?;
    let engine = Engine::new(&plan, Arc::new(PmemKeyStore::new(Arc::new(store), "")))?;
    let layout = TensorLayout::Packed(PackedLayout::new(plan.input_len(), params.slots()));
    for i in 0..IMAGES {
        let bytes = std::fs::read(server.join(format!("in-{i}.ct")))?;
        let cts = split(&bytes)?
            .iter()
            .map(|b| Ciphertext::from_bytes(&params, b))
            .collect::<Result<Vec<_>, _>>()?;
        let out = engine.run(EncryptedTensor { layout, cts })?;
        let blobs: Vec<Vec<u8>> = out.cts.iter().map(|c| c.to_bytes()).collect();
        std::fs::write(server.join(format!("out-{i}.ct")), concat(&blobs))?;
    }
    println!("server: {IMAGES} encrypted results in {}", server.display());
    Ok(())
}

/// Client, step 2: decrypt.
fn client_decrypt(client: &Path, server: &Path) -> R<Vec<Vec<f64>>> {
    let params = Parameters::from_bytes(&std::fs::read(server.join("params.bin"))?)?;
    let sk = secret_key_from_bytes(&params, &std::fs::read(client.join("secret.key"))?)?;
    let (encoder, decryptor) = (Encoder::new(&params)?, Decryptor::new(&sk));
    let out = PackedLayout::new(10, params.slots());
    (0..IMAGES)
        .map(|i| {
            let bytes = std::fs::read(server.join(format!("out-{i}.ct")))?;
            let slots =
                split(&bytes)?
                    .iter()
                    .map(|b| {
                        Ok(encoder
                            .decode(&decryptor.decrypt(&Ciphertext::from_bytes(&params, b)?)?)?)
                    })
                    .collect::<R<Vec<_>>>()?;
            Ok(out.unpack(&slots, params.slots()))
        })
        .collect()
}

fn main() -> R<()> {
    let work = std::env::args()
        .nth(1)
        .map(PathBuf::from)
        .unwrap_or_else(|| std::env::temp_dir().join("home-client-server"));
    let (client, server) = (work.join("client"), work.join("server"));
    let _ = std::fs::remove_dir_all(&work);
    std::fs::create_dir_all(&client)?;
    std::fs::create_dir_all(&server)?;
    let model = repo().join("nn/models/mnist_cnn.onnx");
    let mut images = read_images(&repo().join("nn/data/mnist_sample.idx3"), 1.0 / 255.0, 0.0)?;
    images.truncate(IMAGES);
    client_setup(&model, &client, &server, &images)?;
    server_run(&model, &server)?;
    let logits = client_decrypt(&client, &server)?;
    let ort = read_logits_json(&repo().join("nn/data/mnist_sample_logits.json"))?;
    let agree = logits
        .iter()
        .zip(&ort)
        .filter(|(a, b)| argmax(a) == argmax(b))
        .count();
    println!(
        "client: predictions {:?}",
        logits.iter().map(|l| argmax(l)).collect::<Vec<_>>()
    );
    println!("client: agreement with onnxruntime {agree}/{IMAGES}");
    if agree != IMAGES {
        return Err("encrypted predictions differ from onnxruntime's".into());
    }
    Ok(())
}
