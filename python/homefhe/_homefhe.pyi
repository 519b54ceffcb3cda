"""Type stubs of HomE's native module ``homefhe._homefhe`` (re-exported by ``homefhe``).

Every method that calls into HomE releases the GIL, runs in HomE's thread pool, and raises
``HomeError`` (or a subclass) with the Rust library's message. A Rust panic is caught and
raised as ``InternalError``; a ``PanicException`` never reaches Python.
"""

from os import PathLike
from typing import Callable, Dict, Literal, Optional, Sequence, Tuple, Union

import numpy as np
import numpy.typing as npt

_Bytes = Union[bytes, bytearray, memoryview]
_Values = Union[npt.ArrayLike, Sequence[float]]
_Operand = Union["Ciphertext", npt.ArrayLike, float, int]
_Security = Union[int, str]
_Progress = Union[None, bool, Callable[[int, int], object]]

THREADS_ENV: str
"""Name of the environment variable read at import for the default thread count."""

class HomeError(Exception):
    """Base class of every error raised by HomE; the message is the Rust library's."""

class DecodeError(HomeError):
    """Serialized bytes were rejected (truncated, corrupted, wrong type or version)."""

class ParameterMismatchError(HomeError):
    """An object made under other parameters than the context it is used with."""

class MissingKeyError(HomeError):
    """An operation needs an evaluation key (relinearization, rotation) that was not generated."""

class InternalError(HomeError):
    """A bug inside HomE (a Rust panic caught at the boundary); please report it."""

def set_num_threads(threads: Optional[int]) -> None:
    """Threads for every later call that does not pass ``threads=`` (None: one per core, or
    ``RAYON_NUM_THREADS``). ``HOMEFHE_NUM_THREADS`` sets the initial value."""

def get_num_threads() -> int:
    """The number of threads HomE's calls run on now."""

def secret_keys_created() -> int:
    """How many secret keys this process generated or imported (a pure server reports 0)."""

def read_idx_images(
    path: Union[str, PathLike[str]], scale: float = 1.0 / 255.0, shift: float = 0.0
) -> npt.NDArray[np.float64]:
    """Reads an IDX3 image file (MNIST format) as ``(n, rows*cols)``: ``pixel * scale + shift``."""

def read_idx_labels(path: Union[str, PathLike[str]]) -> npt.NDArray[np.uint8]:
    """Reads an IDX1 label file."""

class Context:
    """CKKS parameters: ring degree, modulus chain, scale, security. Every other object belongs
    to one context. Contexts with the same parameters in one process share their state
    (including keys attached with ``set_eval_keys``)."""

    @staticmethod
    def ckks(
        depth: int,
        scale_bits: int = 40,
        int_bits: int = 20,
        log_n: Optional[int] = None,
        dnum: Optional[int] = None,
        security: Optional[_Security] = None,
    ) -> "Context":
        """Parameters from intent: ``depth`` rescalings of ``scale_bits``-bit primes, a base prime
        of ``scale_bits + int_bits`` bits, the smallest 128-bit-secure ring degree (or
        ``log_n``), the fewest key-switching digits that stay secure (or ``dnum``)."""
    @staticmethod
    def from_moduli(
        log_n: int,
        q_bits: Optional[Sequence[int]] = None,
        p_bits: Optional[Sequence[int]] = None,
        scale_bits: float = 40.0,
        q: Optional[Sequence[int]] = None,
        p: Optional[Sequence[int]] = None,
        alpha: Optional[int] = None,
        security: Optional[_Security] = None,
        hamming_weight: Optional[int] = None,
    ) -> "Context":
        """Parameters from explicit bit sizes (``q_bits``, ``p_bits``; the primes are generated
        deterministically) or explicit primes (``q``, ``p``). ``security``: 128 (checked against
        the HomomorphicEncryption.org table) or ``"insecure-for-testing"``."""
    @staticmethod
    def from_bytes(data: _Bytes, allow_insecure: bool = False) -> "Context":
        """Loads parameters written by ``to_bytes`` (re-validated, security included). A set
        made with ``security="insecure-for-testing"`` is refused unless ``allow_insecure=True``
        (or this process already holds a context of exactly those parameters)."""
    @staticmethod
    def bootstrappable(
        preset: Literal["n12-insecure-for-testing", "n16", "n16-no-arcsine"],
    ) -> "Context":
        """The chain of a bootstrapping preset; the context remembers it (for every context of
        the same parameters in this process). ``"n12-insecure-for-testing"``: N = 2^12, **not
        secure**, seconds, for tests; ``"n16"``: N = 2^16, 128-bit, 9 levels after
        bootstrapping, arcsine correction (about 14 GiB of memory); ``"n16-no-arcsine"``: the
        same without the arcsine, faster, less precise on large constant components. A server
        that receives the parameters as bytes calls this too (same preset, same parameters)."""
    @staticmethod
    def sum_rotations(length: int) -> list[int]:
        """Rotation steps ``[1, 2, 4, ...]`` that ``Ciphertext.sum``/``dot`` need for ``length`` values."""
    @property
    def degree(self) -> int:
        """Ring degree N."""
    @property
    def slots(self) -> int:
        """Slots per ciphertext, N/2."""
    @property
    def max_level(self) -> int:
        """Highest level (rescalings available)."""
    @property
    def scale(self) -> float:
        """Default scale of fresh encodings."""
    @property
    def q(self) -> list[int]:
        """Ciphertext primes q_0..q_L."""
    @property
    def p(self) -> list[int]:
        """Special primes of hybrid key switching."""
    @property
    def log_qp(self) -> float:
        """log2 of the whole modulus QP."""
    @property
    def dnum(self) -> int:
        """Key-switching digits."""
    @property
    def security(self) -> str:
        """``"128"`` or ``"insecure-for-testing"``."""
    @property
    def params_hash(self) -> int:
        """Fingerprint of the parameters carried by every serialized object."""
    @property
    def bootstrap_preset(self) -> Optional[str]:
        """The bootstrapping preset of these parameters, or None when not bootstrappable."""
    @property
    def levels_after(self) -> Optional[int]:
        """Levels of a bootstrapped ciphertext, or None when not bootstrappable."""
    def describe(self) -> str:
        """One-line description of the parameters."""
    def keygen(self) -> "SecretKey":
        """A fresh secret key."""
    def set_eval_keys(self, keys: Optional["EvalKeys"]) -> None:
        """Attaches evaluation keys used by ciphertext operators when no ``keys=`` is given."""
    def eval_keys(self) -> Optional["EvalKeys"]:
        """The attached evaluation keys, if any."""
    def set_bootstrap_keys(self, keys: Optional["BootstrapKeys"]) -> None:
        """Attaches bootstrapping keys used by ``Ciphertext.bootstrap()`` when no ``keys=`` is
        given (``None`` detaches). The operators keep using ``set_eval_keys``'s keys: attach
        ``keys.eval_keys`` there too to multiply and rotate with the same keys."""
    def bootstrap_keys(self) -> Optional["BootstrapKeys"]:
        """The attached bootstrapping keys, if any."""
    def encode(
        self, values: _Values, level: Optional[int] = None, scale: Optional[float] = None
    ) -> "Plaintext":
        """Encodes up to ``slots`` real values at ``level`` (default top) and ``scale``."""
    def decode(self, pt: "Plaintext") -> npt.NDArray[np.float64]:
        """Decodes a plaintext."""
    def encrypt(
        self,
        values: _Values,
        key: Union["PublicKey", "SecretKey"],
        level: Optional[int] = None,
        scale: Optional[float] = None,
    ) -> "Ciphertext":
        """Encrypts up to ``slots`` real values: public-key, or secret-key in seeded (half-size) form."""
    def decrypt(
        self, ciphertext: "Ciphertext", secret_key: "SecretKey", complex: bool = False
    ) -> npt.NDArray[np.float64]:
        """Decrypts to numpy (``complex=True``: complex128)."""
    def noise_bound_bits(
        self, decoded: npt.ArrayLike, expected: npt.ArrayLike, scale: float
    ) -> float:
        """log2 of a bound on a ciphertext's error (ℓ2 norm), from an estimation run of the
        same computation: its decrypted values against the exact ones, at its scale. For
        ``SecretKey.decrypt_flooded``."""
    def to_bytes(self) -> bytes:
        """HomE's serialized parameters (versioned, checksummed)."""

class SecretKey:
    """The secret key. No ``to_bytes`` and no pickling: only ``export_secret_bytes`` writes it.
    Its repr never shows key material."""

    @property
    def context(self) -> Context: ...
    def public_key(self) -> "PublicKey":
        """The public key (fresh randomness each call)."""
    def eval_keys(
        self, relin: bool = True, rotations: Sequence[int] = (), conjugation: bool = False
    ) -> "EvalKeys":
        """Evaluation keys for exactly what is asked: relinearization, one Galois key per
        rotation step, conjugation."""
    def bootstrap_keys(self) -> "BootstrapKeys":
        """Everything ``Ciphertext.bootstrap`` needs for the context's preset (the context must
        come from ``Context.bootstrappable``; otherwise ``HomeError``)."""
    def decrypt(self, ciphertext: "Ciphertext", complex: bool = False) -> npt.NDArray[np.float64]:
        """Decrypts to numpy (``complex=True``: complex128). The raw decryption: its error is a
        function of the secret key, so never show it to the party that computed the
        ciphertext (IND-CPA-D); use ``decrypt_flooded`` for results that leave the client."""
    def decrypt_flooded(
        self,
        ciphertext: "Ciphertext",
        noise_bound_bits: float,
        statistical_security: int = 30,
        decryptions: int = 1,
        complex: bool = False,
    ) -> Tuple[npt.NDArray[np.float64], Dict[str, float]]:
        """Decrypts with noise flooding, ``2^(s/2+1)·√t`` times the bound
        (``Context.noise_bound_bits``); returns ``(values, report)`` with ``noise_bound_bits``,
        ``log2_flooding_sigma`` and ``log2_slot_sigma`` (the flooding noise per value)."""
    def export_secret_bytes(self) -> bytes:
        """Writes the secret key in HomE's format. Store it only where the data owner's secrets go."""
    @staticmethod
    def import_secret_bytes(data: _Bytes, context: Context) -> "SecretKey":
        """Reads a key written by ``export_secret_bytes``, checked against ``context``."""

class PublicKey:
    """The public key. Pickles; ``to_bytes`` writes the seeded form."""

    @property
    def context(self) -> Context: ...
    @property
    def seeded(self) -> bool:
        """Whether the key is held in seeded (half-size) form."""
    def to_bytes(self) -> bytes:
        """HomE's serialized form."""
    @staticmethod
    def from_bytes(data: _Bytes, context: Context) -> "PublicKey":
        """Loads a public key, validated against ``context``."""

class EvalKeys:
    """Relinearization and Galois keys (exactly those generated); public, for the server."""

    @property
    def context(self) -> Context: ...
    @property
    def has_relin(self) -> bool:
        """Whether the relinearization key is present."""
    @property
    def has_conjugation(self) -> bool:
        """Whether the conjugation key is present."""
    @property
    def galois_elements(self) -> list[int]:
        """Galois elements of the keys held."""
    @property
    def rotations(self) -> list[int]:
        """Left-rotation steps covered, in ``1..slots``."""
    @property
    def nbytes(self) -> int:
        """Bytes of key material in memory."""
    def to_bytes(self) -> bytes:
        """A checksummed container of HomE-format keys, each in seeded form."""
    @staticmethod
    def from_bytes(data: _Bytes, context: Context) -> "EvalKeys":
        """Loads keys written by ``to_bytes``, validated against ``context``."""

class BootstrapKeys:
    """Bootstrapping keys from ``SecretKey.bootstrap_keys()``: relinearization, conjugation,
    the DFTs' rotations and the two keys of sparse-secret encapsulation. Public (no secret
    material). Held in memory only: they neither pickle nor have ``to_bytes`` (he-core has no
    serialized form of the encapsulation key yet). The bootstrapper over them (the pre-encoded
    DFT factors) is built on the first ``bootstrap`` and kept."""

    @property
    def context(self) -> Context: ...
    @property
    def preset(self) -> str:
        """The preset's name."""
    @property
    def levels_after(self) -> int:
        """Level of a bootstrapped ciphertext."""
    @property
    def eval_keys(self) -> EvalKeys:
        """The evaluation keys inside (relinearization, conjugation, rotations), for the
        ciphertext operators: ``ctx.set_eval_keys(bk.eval_keys)``."""
    @property
    def nbytes(self) -> int:
        """Bytes of key material in memory."""

class Plaintext:
    """An encoded, unencrypted vector at a level and scale."""

    @property
    def level(self) -> int: ...
    @property
    def scale(self) -> float: ...
    def __len__(self) -> int: ...
    def to_bytes(self) -> bytes: ...
    @staticmethod
    def from_bytes(data: _Bytes, context: Context, length: Optional[int] = None) -> "Plaintext": ...

class Ciphertext:
    """A CKKS ciphertext of up to ``slots`` real values.

    ``+``/``-`` with a ciphertext, an array or a scalar (a scalar is added to the first
    ``len(self)`` values only; levels aligned by dropping limbs, which is exact; scales must
    match); ``*`` by a ciphertext (relinearized when a relinearization key
    is available) or by an array/scalar (encoded at the scale of the prime the next
    ``rescale()`` removes, so rescaling restores the scale exactly); unary ``-``.
    """

    @property
    def level(self) -> int:
        """Level (rescalings left)."""
    @property
    def scale(self) -> float:
        """Scale Δ."""
    @property
    def size(self) -> int:
        """Components: 2, or 3 after a product without relinearization."""
    @property
    def seeded(self) -> bool:
        """Whether the ciphertext is in seeded (half-size) form."""
    @property
    def context(self) -> Context: ...
    def __len__(self) -> int:
        """Number of values ``decrypt`` returns."""
    def __add__(self, other: _Operand) -> "Ciphertext": ...
    def __radd__(self, other: _Operand) -> "Ciphertext": ...
    def __sub__(self, other: _Operand) -> "Ciphertext": ...
    def __rsub__(self, other: _Operand) -> "Ciphertext": ...
    def __mul__(self, other: _Operand) -> "Ciphertext": ...
    def __rmul__(self, other: _Operand) -> "Ciphertext": ...
    def __neg__(self) -> "Ciphertext": ...
    def add(self, other: _Operand) -> "Ciphertext": ...
    def sub(self, other: _Operand) -> "Ciphertext": ...
    def mul(self, other: _Operand, keys: Optional[EvalKeys] = None) -> "Ciphertext":
        """``self * other``, relinearized with ``keys`` (or the context's attached keys)."""
    def relinearize(self, keys: Optional[EvalKeys] = None) -> "Ciphertext":
        """Relinearizes a 3-component product."""
    def rescale(self) -> "Ciphertext":
        """One level down, scale divided by the removed prime."""
    def drop_to_level(self, level: int) -> "Ciphertext":
        """Drops limbs down to ``level`` (exact; scale unchanged)."""
    def with_scale(self, scale: float) -> "Ciphertext":
        """The same data with another recorded scale (manual scale management)."""
    def rotate(self, steps: int, keys: Optional[EvalKeys] = None) -> "Ciphertext":
        """Left rotation over all slots, as ``numpy.roll(x, -steps)``."""
    def conjugate(self, keys: Optional[EvalKeys] = None) -> "Ciphertext":
        """Complex conjugation of every slot."""
    def sum(self, keys: Optional[EvalKeys] = None) -> "Ciphertext":
        """Sum of the values in slot 0 (keys: ``Context.sum_rotations(len(self))``)."""
    def dot(self, other: _Operand, keys: Optional[EvalKeys] = None) -> "Ciphertext":
        """Inner product with a ciphertext or an array: ``(self * other).rescale().sum()``."""
    def bootstrap(self, keys: Optional[BootstrapKeys] = None) -> "Ciphertext":
        """Refreshes the ciphertext (any level; dropped to level 0 first): the result has
        ``context.levels_after`` levels and the default scale. Uses ``keys`` or those attached
        with ``Context.set_bootstrap_keys``. ``HomeError`` when the context is not
        bootstrappable, ``MissingKeyError`` when no keys are given or attached."""
    def decrypt(self, secret_key: SecretKey, complex: bool = False) -> npt.NDArray[np.float64]:
        """Decrypts to numpy."""
    def to_bytes(self) -> bytes:
        """HomE's serialized form (seeded for fresh secret-key encryptions)."""
    @staticmethod
    def from_bytes(data: _Bytes, context: Context, length: Optional[int] = None) -> "Ciphertext":
        """Loads a ciphertext, validated against ``context``."""

class Model:
    """A network imported from ONNX."""

    @staticmethod
    def from_onnx(
        path: Union[str, PathLike[str]],
        activation_degree: int = 7,
        activation_bound: Optional[float] = None,
    ) -> "Model":
        """Imports an ONNX file; ReLU/GELU become polynomials of ``activation_degree`` on
        ``[-activation_bound, activation_bound]`` (None: measured from calibration data)."""
    @staticmethod
    def from_onnx_bytes(
        data: _Bytes, activation_degree: int = 7, activation_bound: Optional[float] = None
    ) -> "Model": ...
    @property
    def input_shape(self) -> list[int]: ...
    @property
    def input_len(self) -> int: ...
    @property
    def output_len(self) -> int: ...
    @property
    def notes(self) -> list[Tuple[str, str, str]]:
        """What import did with each node: ``(node, op, became)``."""
    def to_bytes(self) -> bytes:
        """The ONNX bytes the model was imported from."""
    def forward(self, x: npt.ArrayLike) -> npt.NDArray[np.float64]:
        """Exact cleartext forward pass: ``(B, output_len)``."""
    def plan(
        self,
        mode: Literal["throughput", "batch", "latency"] = "throughput",
        context: Optional[Context] = None,
        log_n: Optional[int] = None,
        scale_bits: Optional[int] = None,
        min_scale_bits: Optional[int] = None,
        max_scale_bits: Optional[int] = None,
        int_bits: Optional[int] = None,
        calibration: Optional[npt.ArrayLike] = None,
        noise_flooding: bool = True,
    ) -> "Plan":
        """Plans the model: parameters (or ``context``'s, as the server does), levels and
        scales, packing, the exact keys needed. With ``noise_flooding`` (the default),
        ``decrypt_output`` floods the outputs' noise (IND-CPA-D, s = 30) so they can be shared;
        the planner picks a scale for it (~26 bits, N >= 2^14). ``False`` only for outputs that
        never leave the client."""

class Plan:
    """A planned model; ``print(plan)`` shows nn's report. Client: ``keygen``,
    ``encrypt_input``, ``decrypt_output``. Server: ``run`` (public evaluation keys only).
    Pickles as the model, the parameters, the mode and the calibration inputs."""

    @property
    def context(self) -> Context: ...
    @property
    def noise_flooding(self) -> Optional[Dict[str, float]]:
        """``statistical_security``, ``decryptions``, ``log2_error_before``,
        ``log2_flooding_sigma``; None when planned with ``noise_flooding=False``."""
    @property
    def mode(self) -> str: ...
    @property
    def depth(self) -> int: ...
    @property
    def input_len(self) -> int: ...
    @property
    def output_len(self) -> int: ...
    @property
    def batch_capacity(self) -> int:
        """Inputs per ciphertext batch: N/2 (throughput) or 1 (latency)."""
    @property
    def rotation_steps(self) -> list[int]: ...
    @property
    def needs_relinearization(self) -> bool: ...
    @property
    def approximations(self) -> list[str]: ...
    def describe(self) -> str:
        """nn's multi-line plan report."""
    def simulate(
        self, x: npt.ArrayLike, noise_seed: Optional[int] = None, threads: Optional[int] = None
    ) -> npt.NDArray[np.float64]:
        """Cleartext dry run of the identical plan (``noise_seed``: with simulated CKKS noise)."""
    def keygen(self, threads: Optional[int] = None) -> Tuple[SecretKey, EvalKeys]:
        """Client: a secret key and exactly the evaluation keys this plan needs."""
    def encrypt_input(
        self, x: npt.ArrayLike, key: Union[SecretKey, PublicKey], threads: Optional[int] = None
    ) -> "EncryptedTensor":
        """Client: encrypts ``(input_len,)`` or ``(B, ...)`` inputs in the plan's layout."""
    def run(
        self,
        ciphertexts: "EncryptedTensor",
        eval_keys: EvalKeys,
        progress: _Progress = None,
        threads: Optional[int] = None,
    ) -> "EncryptedTensor":
        """Server: evaluates the model; ``progress(done, total)`` after each ciphertext batch
        (``True``: a bar on stderr)."""
    def decrypt_output(
        self, ciphertexts: "EncryptedTensor", secret_key: SecretKey, threads: Optional[int] = None
    ) -> npt.NDArray[np.float64]:
        """Client: decrypts to ``(B, output_len)``."""

class EncryptedTensor:
    """Encrypted model inputs or outputs: ciphertext batches in a plan's layout."""

    def __len__(self) -> int:
        """Number of inputs held."""
    @property
    def batches(self) -> int: ...
    @property
    def ciphertexts(self) -> int: ...
    @property
    def level(self) -> Optional[int]: ...
    @property
    def scale(self) -> Optional[float]: ...
    @property
    def context(self) -> Context: ...
    def to_bytes(self) -> bytes:
        """A checksummed container of HomE-format ciphertexts with their layout."""
    @staticmethod
    def from_bytes(data: _Bytes, context: Context) -> "EncryptedTensor": ...
