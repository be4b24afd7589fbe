"""Actor keys, created on first use: RSA-2048 (HTTP signatures) and Ed25519 (object integrity proofs) for the hub's
Application actor and for each local namespace; either kind can be rotated, the old public half kept (and revoked
when it must no longer be trusted) as a RetiredActorKey.

Private halves are kept as PKCS#8 PEM encrypted (cryptography's BestAvailableEncryption) under a password derived
from SECRET_KEY, so a database dump alone does not give them away; they are never served."""

from __future__ import annotations

import hashlib
from functools import lru_cache

from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ed25519, rsa
from cryptography.hazmat.primitives.kdf.hkdf import HKDF
from django.conf import settings
from django.db import IntegrityError, transaction
from django.db.models import QuerySet
from multiformats import multibase, multicodec

from hub.accounts.models import User
from hub.federation.models import ActorKey, KeyKind, RetiredActorKey


def _password() -> bytes:
    return HKDF(algorithm=hashes.SHA256(), length=32, salt=None, info=b"nomoat federation actor keys").derive(
        settings.SECRET_KEY.encode())


def _encrypted(key: rsa.RSAPrivateKey | ed25519.Ed25519PrivateKey) -> str:
    return key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                             serialization.BestAvailableEncryption(_password())).decode()


def ed25519_multibase(public: ed25519.Ed25519PublicKey) -> str:
    """A public Ed25519 key as a Multikey publicKeyMultibase value."""
    raw = public.public_bytes(serialization.Encoding.Raw, serialization.PublicFormat.Raw)
    return multibase.encode(multicodec.wrap("ed25519-pub", raw), "base58btc")


def _existing(user: User | None) -> ActorKey | None:
    return ActorKey.objects.filter(user=user).first() if user else ActorKey.objects.filter(user=None).first()


def actor_key(user: User | None) -> ActorKey:
    """The keys of the hub actor (user None) or of a namespace, generated the first time they are asked for."""
    return _existing(user) or _generate(user)


def actor_key_rotate(user: User | None, kind: str) -> ActorKey:
    """Replace one of an actor's keys with a new one; the old public half is kept as a RetiredActorKey.

    RSA (HTTP signatures): peers that cached the old key fetch the actor again when a signature does not verify
    with it. Ed25519 (proofs): the new key gets a new id, and the old one stays in the actor's assertionMethod, so
    proofs of activities published before still verify."""
    with transaction.atomic():
        key = ActorKey.objects.select_for_update().get(pk=actor_key(user).pk)
        if kind == KeyKind.RSA:
            RetiredActorKey.objects.create(user=user, kind=kind, name=f"rsa-{_fingerprint(key.public_key_pem)}",
                                           public_key=key.public_key_pem)
            private = rsa.generate_private_key(public_exponent=65537, key_size=2048)
            key.public_key_pem, key.private_key_pem = _public_pem(private), _encrypted(private)
            key.save(update_fields=["public_key_pem", "private_key_pem"])
        elif kind == KeyKind.ED25519:
            RetiredActorKey.objects.create(user=user, kind=kind, name=key.ed25519_key_name,
                                           public_key=key.ed25519_public_multibase)
            edwards = ed25519.Ed25519PrivateKey.generate()
            key.ed25519_public_multibase = ed25519_multibase(edwards.public_key())
            key.ed25519_private_pem = _encrypted(edwards)
            key.ed25519_key_name = f"ed25519-{_fingerprint(key.ed25519_public_multibase)}"
            key.save(update_fields=["ed25519_public_multibase", "ed25519_private_pem", "ed25519_key_name"])
        else:
            raise ValueError(f"key kind {kind!r}: expected one of {', '.join(KeyKind.values)}")
    return key


def retired_keys(user: User | None) -> QuerySet[RetiredActorKey]:
    """An actor's retired keys, newest first (revoked ones included)."""
    return RetiredActorKey.objects.filter(user=user) if user else RetiredActorKey.objects.filter(user=None)


def _fingerprint(public: str) -> str:
    return hashlib.sha256(public.encode()).hexdigest()[:12]


def _public_pem(private: rsa.RSAPrivateKey) -> str:
    return private.public_key().public_bytes(serialization.Encoding.PEM,
                                             serialization.PublicFormat.SubjectPublicKeyInfo).decode()


def _generate(user: User | None) -> ActorKey:
    private = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    edwards = ed25519.Ed25519PrivateKey.generate()
    try:
        with transaction.atomic():
            return ActorKey.objects.create(user=user, public_key_pem=_public_pem(private),
                                           private_key_pem=_encrypted(private),
                                           ed25519_public_multibase=ed25519_multibase(edwards.public_key()),
                                           ed25519_private_pem=_encrypted(edwards))
    except IntegrityError:  # another process made them first: use theirs
        return _existing(user)


@lru_cache(maxsize=512)
def _load_private(encrypted_pem: str) -> rsa.RSAPrivateKey | ed25519.Ed25519PrivateKey:
    key = serialization.load_pem_private_key(encrypted_pem.encode(), password=_password())
    assert isinstance(key, rsa.RSAPrivateKey | ed25519.Ed25519PrivateKey)
    return key


def rsa_private_key(key: ActorKey) -> rsa.RSAPrivateKey:
    """The decrypted RSA key of an actor (kept in memory per process)."""
    return _load_private(key.private_key_pem)


def ed25519_private_key(key: ActorKey) -> ed25519.Ed25519PrivateKey:
    """The decrypted Ed25519 key of an actor (kept in memory per process)."""
    return _load_private(key.ed25519_private_pem)
