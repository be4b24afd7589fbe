"""The hub's signing keys on disk: the current private key, and the public keys of retired and revoked ones.

SIGNING_KEY (the current private key, generated on first use) signs; SIGNING_KEY_DIR/previous/<id>.pem hold the
public keys it replaced, so signatures made before a rotation stay verifiable; SIGNING_KEY_DIR/revoked/<id>.pem
hold keys that must no longer be trusted (verifiers refuse what they signed). Every machine that signs shares
the same files (like SECRET_KEY); a key's id is the sha256 of its public PEM, as model_signing records it.
"""

from __future__ import annotations

import os
from pathlib import Path

from django.conf import settings

from hub.core.errors import ServiceError
from workers.engine.fsutil import atomic_writer
from workers.engine.signing import PublicKey, ensure_private_key, key_id, public_key_pem

PREVIOUS, REVOKED = "previous", "revoked"


def signing_key() -> Path:
    """The private key the hub signs with now."""
    return ensure_private_key(settings.SIGNING_KEY)


def public_keys() -> list[PublicKey]:
    """Current first, then previous, then revoked keys (a key moved to revoked is listed once, as revoked)."""
    keys = [PublicKey(public_key_pem(signing_key()), "current")]
    for status in (PREVIOUS, REVOKED):
        folder = settings.SIGNING_KEY_DIR / status
        for path in sorted(folder.glob("*.pem")) if folder.is_dir() else []:
            keys.append(PublicKey(path.read_bytes(), status))
    revoked = {k.key_id for k in keys if k.status == REVOKED}
    return [k for k in keys if k.status == REVOKED or k.key_id not in revoked]


def _keep_public(pem: bytes, status: str) -> Path:
    path = settings.SIGNING_KEY_DIR / status / f"{key_id(pem)}.pem"
    with atomic_writer(path) as out:
        out.write(pem)
    return path


def key_rotate() -> str:
    """Retire the current key (its public half stays listed as previous) and sign with a new one; its id."""
    current = signing_key()
    if current != settings.SIGNING_KEY_DIR / "current.pem":
        raise ServiceError(f"the signing key is {current} (NOMOAT_SIGNING_KEY): rotate it by pointing "
                           "NOMOAT_SIGNING_KEY at a new key; keep the old public key in "
                           f"{settings.SIGNING_KEY_DIR / PREVIOUS}", code="key_external", status=409)
    _keep_public(public_key_pem(current), PREVIOUS)  # before the private key goes, so it is never unlisted
    fresh = ensure_private_key(current.with_name(".next.pem"))
    os.replace(fresh, current)
    return key_id(public_key_pem(current))


def key_revoke(wanted: str) -> PublicKey:
    """Mark a retired key revoked (a verifier then refuses what it signed). The current key is rotated first."""
    keys = {k.key_id: k for k in public_keys()}
    key = keys.get(wanted)
    if key is None:
        raise ServiceError(f"no key {wanted} among the hub's keys", code="not_found", status=404)
    if key.status == "current":
        raise ServiceError(f"{wanted} is the current signing key: rotate it first, then revoke it", code="key_current",
                           status=409)
    _keep_public(key.pem, REVOKED)
    (settings.SIGNING_KEY_DIR / PREVIOUS / f"{wanted}.pem").unlink(missing_ok=True)
    return PublicKey(key.pem, REVOKED)
