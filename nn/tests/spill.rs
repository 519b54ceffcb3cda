//! Activation spill on a residual network (nn/tests/data/resnet8_w2.onnx, bootstrapped at the
//! insecure N = 2^12 test preset, as in tests/resnet.rs): with a budget of zero bytes every
//! value not needed by the next step is parked in a pmem-store (`PmemSpill`) and read back
//! before the step that needs it. The output is bit-identical to the run that holds every
//! value; every parked value comes back and nothing is left in the store; a spill area that
//! fails makes the run fail with its error.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use he_core::circuits::bootstrapping::{BootstrapConfig, BootstrapPreset};
use he_core::circuits::spill::{CiphertextSpill, SpillSet};
use he_core::ckks::{Ciphertext, Encoder, Encryptor};
use he_core::rlwe::Parameters;
use he_nn::data::{read_samples_json, Samples};
use he_nn::onnx::{load_onnx, ImportOptions};
use he_nn::plan::Bootstrapping;
use he_nn::{Engine, Mode, Plan, PlanOptions};
use pmem_store::{PmemSpill, Store, StoreConfig};
use std::path::PathBuf;
use std::sync::Arc;

/// Parks like a [`SpillSet`] but cannot give anything back.
struct Lossy(SpillSet);

impl CiphertextSpill for Lossy {
    fn spill(&self, name: &str, cts: &[Ciphertext]) -> he_core::Result<()> {
        self.0.spill(name, cts)
    }
    fn restore(&self, name: &str, _: &Arc<Parameters>) -> he_core::Result<Vec<Ciphertext>> {
        Err(he_core::Error::Storage(format!("{name}: device gone")))
    }
    fn release(&self, name: &str) -> he_core::Result<()> {
        self.0.release(name)
    }
}

#[test]
fn resnet8_with_activations_spilled_to_a_store_is_bit_identical() {
    let root = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("tests/data");
    let Samples { inputs, .. } = read_samples_json(&root.join("resnet8_w2.json")).unwrap();
    let m = load_onnx(&root.join("resnet8_w2.onnx"), &ImportOptions::default()).unwrap();
    let mut config = BootstrapConfig::preset(BootstrapPreset::N12InsecureForTesting);
    config.residual_bits = vec![40; 5];
    let mut opts = PlanOptions::new(Mode::Latency);
    opts.bootstrapping = Bootstrapping::With(config);
    opts.flooding = None;
    opts.calibration = inputs.clone();
    let plan = Plan::new(&m.network, &opts).unwrap();
    let keys = plan.generate_keys().unwrap();
    let engine =
        Engine::with_encapsulation(&plan, keys.eval.clone(), keys.encapsulation.clone()).unwrap();
    let encoder = Encoder::new(&plan.params).unwrap();
    let encryptor = Encryptor::new(&plan.params, keys.public.clone()).unwrap();
    let ct = plan
        .encrypt(&encoder, &encryptor, std::slice::from_ref(&inputs[0]))
        .unwrap();
    let held = engine.run(ct.clone()).unwrap();

    let dir = std::env::temp_dir().join(format!("he-nn-spill-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    let store = Arc::new(Store::create(&dir, StoreConfig::new(Some(plan.params.hash()))).unwrap());
    let engine = engine.with_activation_spill(Arc::new(PmemSpill::new(store.clone(), "act/")), 0);
    let spilled = engine.run(ct.clone()).unwrap();
    let stats = engine.spill_stats().unwrap();
    println!("spill: {stats:?}, plan of {} steps", plan.steps.len());
    assert_eq!(spilled.cts, held.cts, "spilled run differs");
    assert!(stats.spills >= 4, "{stats:?}");
    assert_eq!(stats.restores, stats.spills);
    assert!(
        store.list().is_empty(),
        "left in the store: {:?}",
        store.list()
    );

    // A spill area that loses what it parked: a typed error, nothing left behind.
    let lossy = Arc::new(Lossy(SpillSet::new()));
    let engine = engine.with_activation_spill(lossy.clone(), 0);
    let err = engine.run(ct).unwrap_err();
    assert!(err.to_string().contains("device gone"), "{err}");
    assert!(lossy.0.is_empty(), "{} values left parked", lossy.0.len());
    drop(engine);
    drop(store);
    let _ = std::fs::remove_dir_all(&dir);
}
