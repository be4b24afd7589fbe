"""HTTP signatures of requests between hubs.

Outgoing requests are signed draft-cavage `rsa-sha256` over `(request-target) host date digest` (what Mastodon
signs and verifies), through apsig. Incoming ones may be draft-cavage or RFC 9421 (`Signature-Input`;
http-message-signatures verifies), with the checks those libraries leave to their caller: which parts are covered,
Date / `created` within FEDERATION_SIGNATURE_MAX_AGE_SECONDS, the body's Digest / Content-Digest.

`(request-target)` is the method and the path *with its query* (draft-cavage section 2.3; Mastodon signs
`get /outbox?page=2`). apsig builds it from the path alone, so both directions use `request_target`: the Signer is
handed it, and a draft-cavage signature is checked over apsig's signing string built with it (apsig's Verifier
offers no way to pass one), by `cryptography`'s RSA PKCS#1 v1.5 verification."""

from __future__ import annotations

import base64
import binascii
import email.utils
import hashlib
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from urllib.parse import urlsplit

import http_sf
import requests
from apsig.draft.sign import Signer
from apsig.draft.tools import build_string
from cryptography.exceptions import InvalidSignature as InvalidRSASignature
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import padding, rsa
from django.conf import settings
from http_message_signatures import (
    ContentDigest,
    HTTPMessageVerifier,
    HTTPSignatureKeyResolver,
    InvalidSignature,
    algorithms,
)

from hub.federation.keys import rsa_private_key
from hub.federation.models import ActorKey


class SignatureRefused(Exception):
    """A request or activity whose signature does not hold: `status` (400/401), `error` (a code), `detail`."""

    def __init__(self, status: int, error: str, detail: str) -> None:
        super().__init__(detail)
        self.status, self.error, self.detail = status, error, detail


def body_digest(body: bytes) -> str:
    """The `Digest` header value of a body (RFC 3230, SHA-256)."""
    return "SHA-256=" + base64.b64encode(hashlib.sha256(body).digest()).decode()


def request_target(method: str, url: str) -> str:
    """The draft-cavage `(request-target)` of a request: `get /outbox?page=2`, the query included."""
    parts = urlsplit(url)
    return f"{method.lower()} {parts.path or '/'}" + (f"?{parts.query}" if parts.query else "")


def request_sign(*, key: ActorKey, key_id: str, method: str, url: str, body: bytes | None = None,
                 headers: dict[str, str] | None = None) -> dict[str, str]:
    """The headers of a request signed draft-cavage rsa-sha256: (request-target) host date [digest]."""
    wanted = {"date": email.utils.formatdate(usegmt=True), **(headers or {})}
    signed_headers = ["(request-target)", "host", "date"]
    if body is not None:
        wanted["digest"] = body_digest(body)
        signed_headers.append("digest")
    signer = Signer(headers=wanted, private_key=rsa_private_key(key), method=method, url=url, key_id=key_id,
                    body=body or b"", signed_headers=signed_headers)
    signer.request_target = request_target(method, url)  # apsig's own would drop the query
    signed = signer.sign()
    signed.pop("Authorization", None)  # Signature alone: Authorization would collide with API tokens
    return signed


@dataclass(frozen=True)
class SignedBy:
    key_id: str


def _signature_params(header: str) -> dict[str, str]:
    params = {}
    for item in header.split(","):
        name, sep, value = item.strip().partition("=")
        if sep:
            params[name.strip()] = value.strip().strip('"')
    return params


def request_verify(*, method: str, url: str, headers: dict[str, str], body: bytes,
                   public_key: Callable[[str, bool], str]) -> SignedBy:
    """Check a signed request (draft-cavage, or RFC 9421 when it has Signature-Input). `public_key(key_id,
    refresh)` returns the signer's public PEM (refresh: fetch it again, the key may have rotated). Raises
    SignatureRefused naming what is wrong."""
    headers = {name.lower(): value for name, value in headers.items()}
    if "signature-input" in headers:
        return _rfc9421_verify(method=method, url=url, headers=headers, body=body, public_key=public_key)
    header = headers.get("signature")
    if not header:
        raise SignatureRefused(401, "unsigned", "the request has no Signature header: sign it (draft-cavage "
                                                "rsa-sha256 over (request-target) host date digest)")
    params = _signature_params(header)
    missing = [name for name in ("keyId", "signature", "headers") if not params.get(name)]
    if missing:
        raise SignatureRefused(401, "bad_signature", f"the Signature header lacks {', '.join(missing)}")
    if params.get("algorithm", "rsa-sha256") not in {"rsa-sha256", "hs2019"}:
        raise SignatureRefused(401, "bad_signature", f"Signature algorithm {params['algorithm']!r}: expected rsa-sha256")
    signed = params["headers"].lower().split()
    needed = ["(request-target)", "host", "date"] + (["digest"] if method.upper() == "POST" else [])
    unsigned = [name for name in needed if name not in signed]
    if unsigned:
        raise SignatureRefused(401, "bad_signature", f"the signature must cover {', '.join(unsigned)}")
    _date_check(headers.get("date", ""))
    if method.upper() == "POST" and not _digest_matches(headers.get("digest", ""), body):
        raise SignatureRefused(400, "digest_mismatch", "the Digest header does not match the body's SHA-256 "
                                                       f"(expected {body_digest(body)})")
    try:
        signature = base64.b64decode(params["signature"], validate=True)
        signing_string = build_string({**headers, "(request-target)": request_target(method, url)}, signed).encode()
    except binascii.Error:
        raise SignatureRefused(401, "bad_signature", "the Signature header's signature: expected base64") from None
    except KeyError as exc:
        raise SignatureRefused(401, "bad_signature", f"the signature covers the header {exc}, which the request "
                                                     "lacks") from None
    for refresh in (False, True):
        try:
            _rsa_public_key(public_key(params["keyId"], refresh)).verify(signature, signing_string,
                                                                         padding.PKCS1v15(), hashes.SHA256())
        except (InvalidRSASignature, ValueError) as exc:
            if refresh:
                raise SignatureRefused(401, "bad_signature", f"the signature does not verify with the key "
                                                             f"{params['keyId']}: {exc or 'invalid signature'}") from None
            continue
        return SignedBy(params["keyId"])
    raise AssertionError("unreachable")


def _rsa_public_key(pem: str) -> rsa.RSAPublicKey:
    key = serialization.load_pem_public_key(pem.encode())
    if not isinstance(key, rsa.RSAPublicKey):
        raise ValueError("the key is not an RSA key (rsa-sha256)")
    return key


def _digest_matches(header: str, body: bytes) -> bool:
    algorithm, _, value = header.partition("=")
    return algorithm.strip().lower() == "sha-256" and value.strip() == body_digest(body).partition("=")[2]


def _date_check(value: str) -> None:
    try:
        when = email.utils.parsedate_to_datetime(value)
    except (TypeError, ValueError, IndexError):
        raise SignatureRefused(401, "bad_date", f"Date header {value!r}: expected an HTTP date") from None
    if when.tzinfo is None:
        when = when.replace(tzinfo=UTC)
    _age_check(when, f"Date {value}")


def _age_check(when: datetime, what: str) -> None:
    skew = abs((datetime.now(UTC) - when).total_seconds())
    if skew > settings.FEDERATION_SIGNATURE_MAX_AGE_SECONDS:
        raise SignatureRefused(401, "stale_date", f"{what} is {int(skew)} s from now (more than "
                                                  f"{settings.FEDERATION_SIGNATURE_MAX_AGE_SECONDS} s): replayed or "
                                                  "clock skew")


class _OneKey(HTTPSignatureKeyResolver):
    def __init__(self, pem: str) -> None:
        self.pem = pem

    def resolve_public_key(self, key_id: str) -> bytes:
        return self.pem.encode()


def _rfc9421_verify(*, method: str, url: str, headers: dict[str, str], body: bytes,
                    public_key: Callable[[str, bool], str]) -> SignedBy:
    try:
        inputs = http_sf.parse(headers["signature-input"].encode(), tltype="dictionary")
    except Exception:  # noqa: BLE001 - http_sf raises plain ValueErrors and others for a malformed field
        inputs = None
    if not isinstance(inputs, dict) or len(inputs) != 1 or "signature" not in headers:
        raise SignatureRefused(401, "bad_signature", "Signature-Input and Signature: expected one RFC 9421 signature")
    components, params = next(iter(inputs.values()))
    covered = {item[0] if isinstance(item, tuple) else item for item in components}
    key_id, created = params.get("keyid"), params.get("created")
    if not isinstance(key_id, str) or not isinstance(created, int):
        raise SignatureRefused(401, "bad_signature", "Signature-Input: expected keyid and created parameters")
    needed = {"@method"} | ({"@target-uri"} if "@target-uri" in covered else {"@path", "@authority"})
    if method.upper() == "POST":
        needed.add("content-digest")
    if needed - covered:
        raise SignatureRefused(401, "bad_signature", f"the signature must cover {', '.join(sorted(needed - covered))}")
    _age_check(datetime.fromtimestamp(created, UTC), f"Signature-Input created={created}")
    if method.upper() == "POST":
        try:
            ContentDigest.verify(headers.get("content-digest", ""), body)
        except InvalidSignature:
            raise SignatureRefused(400, "digest_mismatch", "the Content-Digest header does not match the body "
                                                           f"(expected {ContentDigest.create(body)})") from None
    message = requests.Request(method.upper(), url, headers=headers).prepare()
    for refresh in (False, True):
        verifier = HTTPMessageVerifier(signature_algorithm=algorithms.RSA_V1_5_SHA256,
                                       key_resolver=_OneKey(public_key(key_id, refresh)))
        verifier.max_clock_skew = timedelta(seconds=settings.FEDERATION_SIGNATURE_MAX_AGE_SECONDS)  # checked above
        try:
            verifier.verify(message, max_age=None, body=body if method.upper() == "POST" else None)
        except InvalidSignature as exc:
            if refresh:
                raise SignatureRefused(401, "bad_signature", f"the signature does not verify with the key {key_id}: "
                                                             f"{exc}") from None
            continue
        return SignedBy(key_id)
    raise AssertionError("unreachable")
