"""Models: ONNX import, plan printing, simulation, client/server encrypted inference."""

import pickle
import threading
import time

import numpy as np
import pytest

import homefhe


def test_model_import(model):
    assert model.input_shape == [1, 28, 28] and model.input_len == 784 and model.output_len == 10
    assert any(op == "Conv" for _, op, _ in model.notes)
    assert "Model(input_shape=[1, 28, 28]" in repr(model)


def test_model_forward_matches_onnxruntime(model, images, ort_logits):
    out = model.forward(images[:8])
    assert out.shape == (8, 10)
    assert np.abs(out - ort_logits[:8]).max() < 1e-3


def test_model_pickles(model, images):
    back = pickle.loads(pickle.dumps(model))
    assert np.array_equal(back.forward(images[:2]), model.forward(images[:2]))


def test_plan_prints_like_nn(plan):
    text = str(plan)
    assert text == plan.describe()
    assert text.startswith("mode Latency; parameters N=2^13")
    assert "rotation steps (35)" in text and "memory estimate" in text
    assert plan.mode == "latency" and plan.batch_capacity == 1 and len(plan.rotation_steps) == 35
    assert plan.depth == 5 and plan.needs_relinearization
    assert "Plan(mode=latency" in repr(plan)


def test_throughput_plan(model):
    p = model.plan(mode="throughput", log_n=13, min_scale_bits=24, noise_flooding=False)
    assert p.batch_capacity == 4096 and p.rotation_steps == []
    assert str(p).startswith("mode Throughput")


def test_simulate(plan, images, ort_logits):
    sim = plan.simulate(images[:16])
    assert sim.shape == (16, 10)
    assert np.abs(sim - ort_logits[:16]).max() < 1e-3
    noisy = plan.simulate(images[:16], noise_seed=3)
    assert np.abs(noisy - ort_logits[:16]).max() < 0.2
    # Shapes accepted: (784,), (B, 784), (B, 1, 28, 28).
    assert plan.simulate(images[0]).shape == (1, 10)
    assert plan.simulate(images[:2].reshape(2, 1, 28, 28)).shape == (2, 10)


def test_encrypted_inference(plan, plan_keys, images, ort_logits):
    sk, ek = plan_keys
    assert ek.has_relin and len(ek.galois_elements) == 35
    x = images[:3]
    ct = plan.encrypt_input(x, sk)
    assert len(ct) == 3 and ct.batches == 3 and ct.level == plan.depth
    calls = []
    out = plan.run(ct, ek, progress=lambda done, total: calls.append((done, total)), threads=2)
    assert calls == [(0, 3), (1, 3), (2, 3), (3, 3)]
    assert out.level == 0
    logits = plan.decrypt_output(out, sk)
    assert logits.shape == (3, 10)
    assert np.abs(logits - ort_logits[:3]).max() < 0.1
    assert (logits.argmax(1) == ort_logits[:3].argmax(1)).all()
    # With the public key too.
    out = plan.run(plan.encrypt_input(x[:1], sk.public_key()), ek)
    assert np.abs(plan.decrypt_output(out, sk) - ort_logits[:1]).max() < 0.1


def test_throughput_batch_inference(model, images, ort_logits):
    # Throughput mode, 128-bit secure at N = 2^13, a batch of 5 images in one ciphertext
    # batch: 784 ciphertexts, one per pixel, image i in slot i.
    p = model.plan(mode="throughput", log_n=13, min_scale_bits=24, noise_flooding=False)
    sk, ek = p.keygen()
    ct = p.encrypt_input(images[:5], sk)
    assert ct.ciphertexts == 784 and len(ct) == 5
    logits = p.decrypt_output(p.run(ct, ek), sk)
    assert logits.shape == (5, 10)
    assert (logits.argmax(1) == ort_logits[:5].argmax(1)).all()


def test_encrypted_tensor_bytes_and_pickle(plan, plan_keys, images):
    sk, ek = plan_keys
    ct = plan.encrypt_input(images[:2], sk)
    b = ct.to_bytes()
    back = homefhe.EncryptedTensor.from_bytes(b, plan.context)
    assert back.to_bytes() == b and len(back) == 2
    back = pickle.loads(pickle.dumps(ct))
    assert back.to_bytes() == b
    for cut in (0, 39, 40, 100, len(b) - 1):
        with pytest.raises(homefhe.HomeError):
            homefhe.EncryptedTensor.from_bytes(b[:cut], plan.context)
    for pos in (0, 12, 20, 45, 60, len(b) // 2, len(b) - 1):
        f = bytearray(b)
        f[pos] ^= 4
        with pytest.raises(homefhe.HomeError):
            homefhe.EncryptedTensor.from_bytes(bytes(f), plan.context)


def test_server_plan_from_keys_context(model, plan, plan_keys, images):
    """The server builds its plan from the model and the parameters in the public keys."""
    sk, ek = plan_keys
    server_ek = homefhe.EvalKeys.from_bytes(ek.to_bytes(), plan.context)
    server_plan = model.plan(mode="latency", context=server_ek.context, noise_flooding=False)
    assert server_plan.describe() == plan.describe()
    out = server_plan.run(plan.encrypt_input(images[:1], sk), server_ek)
    assert plan.decrypt_output(out, sk).shape == (1, 10)
    # Keys of other parameters are refused with the parameters' hashes in the message.
    other = model.plan(mode="latency")  # N = 2^14
    with pytest.raises(homefhe.ParameterMismatchError):
        other.run(plan.encrypt_input(images[:1], sk), ek)


def test_gil_released_during_run(plan, plan_keys, images):
    """Another Python thread keeps running while the server evaluates."""
    sk, ek = plan_keys
    ct = plan.encrypt_input(images[:2], sk)
    plan.run(ct, ek)  # warm: the engine is built
    ticks = 0
    stop = threading.Event()

    def spin():
        nonlocal ticks
        while not stop.is_set():
            ticks += 1

    t = threading.Thread(target=spin)
    t.start()
    try:
        start = time.perf_counter()
        plan.run(ct, ek)
        elapsed = time.perf_counter() - start
    finally:
        stop.set()
        t.join()
    # With the GIL held for the whole call the spinning thread would get almost no ticks.
    assert ticks > 1000, (ticks, elapsed)


def test_tensor_of_another_mode_is_refused(model, plan, plan_keys, images):
    """A throughput-mode tensor under the same parameters given to a latency plan: an error
    (or, at worst, a caught internal error), never a crash."""
    sk, ek = plan_keys
    tp = model.plan(mode="throughput", context=plan.context, noise_flooding=False)
    ct = tp.encrypt_input(images[:2], sk)
    with pytest.raises(homefhe.HomeError):
        plan.run(ct, ek)


def test_plan_and_model_pickle(model, plan, plan_keys, images):
    sk, ek = plan_keys
    back = pickle.loads(pickle.dumps(plan))
    assert back.describe() == plan.describe()
    out = back.run(plan.encrypt_input(images[:1], sk), ek)
    assert plan.decrypt_output(out, sk).shape == (1, 10)
    assert homefhe.Model.from_onnx_bytes(model.to_bytes()).notes == model.notes
    calibrated = model.plan(mode="throughput", log_n=13, min_scale_bits=24, calibration=images[:8], noise_flooding=False)
    again = pickle.loads(pickle.dumps(calibrated))
    assert again.describe() == calibrated.describe()


def test_noise_flooding_is_the_default(model, images):
    """Default plans flood the decrypted outputs' noise (IND-CPA-D) and still classify like
    the plaintext model; the precision before and after is reported."""
    p = model.plan(mode="throughput", calibration=images[:8])
    f = p.noise_flooding
    assert f is not None and f["statistical_security"] == 30
    assert f["log2_flooding_sigma"] <= -6 and f["log2_error_before"] < f["log2_flooding_sigma"] - 20
    assert "noise flooding of outputs: s = 30" in p.describe()
    sk, ek = p.keygen()
    out = p.run(p.encrypt_input(images[:8], sk), ek)
    got = p.decrypt_output(out, sk)
    want = p.simulate(images[:8])
    again = p.decrypt_output(out, sk)
    # Fresh flooding noise at every decryption, of about the stated size.
    diff = np.sqrt(np.mean((got - again) ** 2)) / np.sqrt(2)
    assert abs(np.log2(diff) - f["log2_flooding_sigma"]) < 1.0, (np.log2(diff), f)
    assert (got.argmax(axis=1) == want.argmax(axis=1)).all()
    # Small parameters cannot absorb it: planning says so and names the opt-out.
    with pytest.raises(homefhe.HomeError, match="noise_flooding|flooding"):
        model.plan(mode="throughput", log_n=13, min_scale_bits=24)
