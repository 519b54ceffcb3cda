"""The README's Python quickstart, copied verbatim, must be in the README and must run."""

import contextlib
import io
import os
import pathlib

ROOT = pathlib.Path(__file__).resolve().parents[2]

QUICKSTART = '''\
import homefhe
model = homefhe.Model.from_onnx("nn/models/mnist_cnn.onnx")
plan = model.plan(mode="throughput")     # print(plan): levels, scales, keys, noise flooding
images = homefhe.read_idx_images("nn/data/mnist_sample.idx3")[:4]  # numpy (4, 784), pixel/255
secret_key, eval_keys = plan.keygen()                # client: only the keys this plan needs
encrypted = plan.encrypt_input(images, secret_key)   # client; .to_bytes() to send
result = plan.run(encrypted, eval_keys)              # server: public evaluation keys only
logits = plan.decrypt_output(result, secret_key)     # client: numpy (4, 10), noise-flooded
print(logits.argmax(axis=1))
'''


def test_quickstart_is_in_readme_verbatim():
    readme = (ROOT / "README.md").read_text()
    assert "```python\n" + QUICKSTART + "```" in readme
    assert len(QUICKSTART.strip().splitlines()) <= 10


def test_quickstart_runs():
    import homefhe

    labels = homefhe.read_idx_labels(str(ROOT / "nn/data/mnist_sample_labels.idx1"))[:4]
    cwd = os.getcwd()
    os.chdir(ROOT)
    out = io.StringIO()
    try:
        scope = {}
        with contextlib.redirect_stdout(out):
            exec(compile(QUICKSTART, "README quickstart", "exec"), scope)
    finally:
        os.chdir(cwd)
    assert (scope["logits"].argmax(axis=1) == labels).all()
    assert out.getvalue().strip() == str(labels.tolist()).replace(",", "")
