"""Object integrity proofs of activities (FEP-8b32 `DataIntegrityProof`, cryptosuite `eddsa-jcs-2022`, through
apsig): JSON canonicalization, so every field is covered and no JSON-LD context is fetched, signed with the actor's
Ed25519 key, so an activity relayed by another hub (inside an Announce) stays verifiable as its author's.
HTTP signatures of requests are hub.federation.httpsig's; SignatureRefused is shared by both."""

from __future__ import annotations

import copy
from collections.abc import Callable
from datetime import UTC, datetime

from apsig.proof.sign import ProofSigner
from apsig.proof.verify import ProofVerifier

from hub.federation.client import RemoteError
from hub.federation.httpsig import SignatureRefused
from hub.federation.keys import ed25519_private_key
from hub.federation.models import ActorKey
from hub.federation.remote import remote_actor_get

__all__ = ["SignatureRefused", "embedded_signature_check", "embedded_signature_sign", "embedded_signature_verify"]
PROOF_OPTIONS = {"type": "DataIntegrityProof", "cryptosuite": "eddsa-jcs-2022", "proofPurpose": "assertionMethod"}


def embedded_signature_sign(activity: dict, key: ActorKey, verification_method: str) -> dict:
    """The activity with a FEP-8b32 proof by the actor's Ed25519 key (`verification_method`: its key id)."""
    unsigned = {name: value for name, value in activity.items() if name != "proof"}
    options = {**PROOF_OPTIONS, "verificationMethod": verification_method,
               "created": datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")}
    return ProofSigner(ed25519_private_key(key)).sign(unsigned, options)


def embedded_signature_check(activity: dict, multibase_key: Callable[[str], str]) -> str:
    """The verificationMethod (key id) whose key verifies the activity's proof; `multibase_key(key_id)` returns the
    publicKeyMultibase of that key. Raises SignatureRefused."""
    proof = activity.get("proof")
    if not isinstance(proof, dict) or not proof.get("verificationMethod") or not proof.get("proofValue"):
        raise SignatureRefused(401, "unsigned_object", "the activity has no proof (FEP-8b32 DataIntegrityProof with "
                                                       "verificationMethod and proofValue)")
    if proof.get("cryptosuite") != PROOF_OPTIONS["cryptosuite"] or proof.get("type") != PROOF_OPTIONS["type"]:
        raise SignatureRefused(401, "bad_proof", "proof: expected type DataIntegrityProof, cryptosuite eddsa-jcs-2022")
    method = proof["verificationMethod"]
    try:
        verified = ProofVerifier(multibase_key(method)).verify(copy.deepcopy(activity), raise_on_fail=True)
    except SignatureRefused:
        raise
    except Exception as exc:  # noqa: BLE001 - apsig raises several kinds for a proof that does not hold
        raise SignatureRefused(401, "bad_proof", f"the proof does not verify with {method}: {exc}") from None
    return verified


def embedded_signature_verify(activity: dict) -> str:
    """The actor URL whose Ed25519 key (its assertionMethod, fetched and cached; fetched again once when the
    cached key does not verify) verifies the activity's proof, and who is the activity's `actor`."""
    proof = activity.get("proof") if isinstance(activity.get("proof"), dict) else {}
    owner = str(proof.get("verificationMethod", "")).split("#", 1)[0]
    if not owner or owner != activity.get("actor"):
        raise SignatureRefused(401, "bad_proof", f"proof by {owner or 'nobody'}: expected the activity's actor "
                                                 f"{activity.get('actor')}")
    for refresh in (False, True):
        try:
            keys = remote_actor_get(url=owner, refresh=refresh).proof_keys
        except RemoteError as exc:
            raise SignatureRefused(401, "unknown_key", f"proof key of {owner}: could not fetch the actor ({exc})") from None
        try:
            embedded_signature_check(activity, lambda method, keys=keys: keys.get(method) or "")
        except SignatureRefused:
            if refresh:
                raise
            continue
        return owner
    raise AssertionError("unreachable")
