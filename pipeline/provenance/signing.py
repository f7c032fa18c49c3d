"""Optional Ed25519 signatures on run manifests.

The run log ties a manifest to the moment its run finished, but whoever can write the
output folder can write the log. A signature ties the manifest to a key instead: an
organisation keeps the private key off the evidence machines and publishes the public one,
and anyone can check that a run folder is the one it signed. The signature is detached
(``manifest.json.sig`` beside the manifest), over the manifest's exact bytes; since the
manifest lists every other file of the folder with its SHA-256, it covers them all. Keys
are PEM files made by :func:`generate_keypair` (``burnscan keygen``); they never go into a
run folder.

References
----------
Bernstein, D. J., Duif, N., Lange, T., Schwabe, P. & Yang, B.-Y. (2012). High-speed
high-security signatures. Journal of Cryptographic Engineering 2, 77-89 (Ed25519);
RFC 8032 (EdDSA).

Examples
--------
>>> from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
>>> key = Ed25519PrivateKey.generate()
>>> text = signature_text(b'{"run_id": "x"}', key)
>>> signature_problem(b'{"run_id": "x"}', text, key.public_key(), key_name="k.pub") is None
True
>>> signature_problem(b'{"run_id": "y"}', text, key.public_key(), key_name="k.pub")[:40]
'signature does not verify with k.pub: th'
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import json
from pathlib import Path
from typing import Any

from cryptography.exceptions import InvalidSignature, UnsupportedAlgorithm
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey, Ed25519PublicKey

from pipeline.errors import OutputError, ParameterError
from pipeline.readers.rasters import read_small_file

__all__ = [
    "PUBLIC_SUFFIX",
    "generate_keypair",
    "load_private_key",
    "load_public_key",
    "key_fingerprint",
    "signature_text",
    "signature_problem",
]

PUBLIC_SUFFIX = ".pub"
_ALGORITHM = "Ed25519"


def key_fingerprint(public_key: Ed25519PublicKey) -> str:
    """SHA-256 of the raw 32-byte public key, in hex: how a signature names the key that made it."""
    raw = public_key.public_bytes(serialization.Encoding.Raw, serialization.PublicFormat.Raw)
    return hashlib.sha256(raw).hexdigest()


def _inside_run_folder(path: Path) -> Path | None:
    """The run folder (a folder holding a manifest) that ``path`` would be written into, if any."""
    for folder in [path.parent, *path.parent.parents]:
        if (folder / "manifest.json").is_file():
            return folder
    return None


def generate_keypair(private_path: Path) -> tuple[Path, Path, str]:
    """Write a new Ed25519 private key (PEM, PKCS #8, mode 0600) and its public key beside it.

    The public key goes to ``<private_path>.pub``. Nothing is overwritten: both names must
    be free (a replaced key would make every signature made with the old one uncheckable).

    Returns
    -------
    private_path, public_path, fingerprint
    """
    from pipeline.outputs.write import write_new

    private_path = Path(private_path)
    public_path = private_path.with_name(private_path.name + PUBLIC_SUFFIX)
    for path in (private_path, public_path):
        if path.exists() or path.is_symlink():
            raise OutputError(f"{path}: already exists; keys are never overwritten: choose another --out")
    folder = _inside_run_folder(private_path.absolute())
    if folder is not None:
        raise OutputError(f"{private_path}: inside the run folder {folder}; keys never go into a run folder: "
                          f"keep them elsewhere (the private key off the evidence machines)")
    key = Ed25519PrivateKey.generate()
    private_pem = key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption())
    public_pem = key.public_key().public_bytes(serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo)
    write_new(private_path, private_pem, root=private_path.parent, mode=0o600)
    write_new(public_path, public_pem, root=public_path.parent, mode=0o644)
    return private_path, public_path, key_fingerprint(key.public_key())


# An Ed25519 PEM key is about 120 bytes and even a 4096-bit RSA key (refused below, with its
# kind named) some 3 kB: 64 kB takes any key file, and stops /dev/zero or a disk image given by
# mistake before it fills the memory.
_MAX_KEY_BYTES = 64_000


def _read_key_file(path: Path, what: str) -> bytes:
    """The key file's bytes; a pipe, a device or a file larger than any key is one line, never read."""
    return read_small_file(Path(path), _MAX_KEY_BYTES, what=what, fix="give the file burnscan keygen wrote",
                           error=ParameterError)


def load_private_key(path: Path) -> Ed25519PrivateKey:
    """The Ed25519 private key in a PEM file (unencrypted PKCS #8, as ``burnscan keygen`` writes it)."""
    data = _read_key_file(path, "private key")
    try:
        key = serialization.load_pem_private_key(data, password=None)
    except (ValueError, TypeError, UnsupportedAlgorithm) as exc:
        hint = " (this is a public key: sign with the private one)" if b"PUBLIC KEY" in data else ""
        raise ParameterError(f"{path}: not a readable private key{hint} ({exc}); give the private key burnscan keygen wrote") from None
    if not isinstance(key, Ed25519PrivateKey):
        raise ParameterError(f"{path}: a {type(key).__name__}, not an Ed25519 key; make one with burnscan keygen")
    return key


def load_public_key(path: Path) -> Ed25519PublicKey:
    """The Ed25519 public key in a PEM file (``<key>.pub`` written by ``burnscan keygen``)."""
    data = _read_key_file(path, "public key")
    try:
        key = serialization.load_pem_public_key(data)
    except (ValueError, TypeError, UnsupportedAlgorithm) as exc:
        hint = " (this is a private key: check with its public half, <key>.pub)" if b"PRIVATE KEY" in data else ""
        raise ParameterError(f"{path}: not a readable public key{hint} ({exc}); give the .pub file burnscan keygen wrote") from None
    if not isinstance(key, Ed25519PublicKey):
        raise ParameterError(f"{path}: a {type(key).__name__}, not an Ed25519 key; give the .pub file burnscan keygen wrote")
    return key


def signature_text(manifest_bytes: bytes, key: Ed25519PrivateKey) -> str:
    """The content of ``manifest.json.sig``: the signature of ``manifest_bytes`` and who made it (JSON)."""
    record = {
        "algorithm": _ALGORITHM,
        "signed_file": "manifest.json",
        "manifest_sha256": hashlib.sha256(manifest_bytes).hexdigest(),
        "public_key_sha256": key_fingerprint(key.public_key()),
        "signature": base64.b64encode(key.sign(manifest_bytes)).decode("ascii"),
    }
    return json.dumps(record, indent=2) + "\n"


def signature_problem(manifest_bytes: bytes, text: str, public_key: Ed25519PublicKey, *, key_name: str) -> str | None:
    """Why the signature ``text`` does not prove ``manifest_bytes`` under ``public_key`` (None when it does)."""
    try:
        record: Any = json.loads(text)
        signature = base64.b64decode(record["signature"], validate=True)
        signer = str(record.get("public_key_sha256", ""))
    except (ValueError, KeyError, TypeError, binascii.Error):
        return "the signature file is not one burnscan writes: it was damaged or replaced"
    try:
        public_key.verify(signature, manifest_bytes)
    except InvalidSignature:
        mine = key_fingerprint(public_key)
        who = (f"it was made with another key (fingerprint {signer[:16]}, this key is {mine[:16]})" if signer != mine
               else "the manifest or the signature changed after signing")
        return f"signature does not verify with {key_name}: {who}"
    return None


