"""HomE for Python: CKKS homomorphic encryption and encrypted model inference.

Quick tour::

    import numpy as np, homefhe
    ctx = homefhe.Context.ckks(depth=2, scale_bits=40)
    sk = ctx.keygen()
    ctx.set_eval_keys(sk.eval_keys(rotations=homefhe.Context.sum_rotations(4)))
    x = ctx.encrypt(np.array([1.0, 2.0, 3.0, 4.0]), sk)
    y = (x * 2.0).rescale() + 1.5
    print(sk.decrypt(y), sk.decrypt(x.sum()))

Models: ``homefhe.Model.from_onnx(path).plan(mode="throughput")`` gives a ``Plan`` with the
client side (``keygen``, ``encrypt_input``, ``decrypt_output``) and the server side
(``run(ciphertexts, eval_keys)``, public evaluation keys only).

Bootstrapping: ``ctx = homefhe.Context.bootstrappable("n12-insecure-for-testing")``,
``bk = sk.bootstrap_keys()``, ``ct.bootstrap(bk)`` (``ctx.levels_after`` levels again).

Every failure raises ``homefhe.HomeError`` (or a subclass) with the Rust library's message.
Threads: ``homefhe.set_num_threads(n)``, the ``threads=`` argument of long calls, or the
environment variable ``HOMEFHE_NUM_THREADS``.
"""

from ._homefhe import (
    BootstrapKeys,
    Ciphertext,
    Context,
    DecodeError,
    EncryptedTensor,
    EvalKeys,
    HomeError,
    InternalError,
    MissingKeyError,
    Model,
    ParameterMismatchError,
    Plaintext,
    Plan,
    PublicKey,
    SecretKey,
    THREADS_ENV,
    get_num_threads,
    read_idx_images,
    read_idx_labels,
    secret_keys_created,
    set_num_threads,
)
from . import _homefhe as _native

__all__ = [
    "BootstrapKeys",
    "Ciphertext",
    "Context",
    "DecodeError",
    "EncryptedTensor",
    "EvalKeys",
    "HomeError",
    "InternalError",
    "MissingKeyError",
    "Model",
    "ParameterMismatchError",
    "Plaintext",
    "Plan",
    "PublicKey",
    "SecretKey",
    "THREADS_ENV",
    "get_num_threads",
    "read_idx_images",
    "read_idx_labels",
    "secret_keys_created",
    "set_num_threads",
]


def _restore(kind, *args):
    """Reconstructor used by pickle (``__reduce__`` of every picklable object)."""
    if kind == "Model":
        data, degree, bound = args
        return Model.from_onnx_bytes(data, activation_degree=degree, activation_bound=bound)
    if kind == "Plan":
        params, data, degree, bound, mode, calibration, noise_flooding = args
        model = Model.from_onnx_bytes(data, activation_degree=degree, activation_bound=bound)
        return model.plan(
            mode=mode,
            context=Context.from_bytes(params),
            calibration=calibration,
            noise_flooding=noise_flooding,
        )
    return _native._restore_native(kind, *args)
