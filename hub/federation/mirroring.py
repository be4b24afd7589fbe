"""What this hub does with the content other hubs send: mirroring versions, honouring takedowns, taking reports.

F1's inbox verifies who sent an activity and hands Create, Update, Announce, Delete and Flag to
`activity_received`. The rule that keeps the network safe: an item's *authority* is its origin hub (the host of
its object id). A Create, Update or Delete counts only when its sender is that origin, or when it comes inside an
Announce whose embedded signature verifies as the origin's. Anything else is refused (MirrorRefused, 403).

A received version is fetched on the federation queue (`mirror_version`): every file from its URL, streamed into
the blob store against the sha256 the object names (a digest on the denylist is refused there too), then recorded
as an ordinary version in state `uploaded` of a shadow namespace `<owner>__<host-port>`, so this hub's own
validation runs on it. The shadow namespace is a trusted uploader unless the peer's policy asks for review, so a
version that passes is published without waiting for a local moderator exactly like a trusted uploader's.

A peer followed for `metadata` or `on_demand` sends versions this hub lists without fetching (`_record_listed`): a
RemoteItem (the policy's record, served at /api/v1/federation/items) and a catalog version in state `listed` whose
VersionOrigin names its files, each downloading through RemoteItemFile. It is browsed, searched and shown like a
mirrored version and never validated, evaluated, signed or stacked; on demand, the first download fetches its files
and `_record` fills in that same version, which then goes through validation as above. Listed, it is re-shared with
this hub's followers as a mirrored version is once published (the origin's signed Create in an Announce, without
copies to offer), so a hub that follows this one hears of it and applies its own policy.

The origin's provenance travels with it: the files its model.sig signs that the origin made (model.sig,
provenance.intoto.jsonl, its GGUF LoRA) are fetched too, and model.sig must verify over the fetched files with a
key the origin serves at /api/v1/keys, or the version is refused. An Announce also carries the mirror attestations
of the hubs it came through; each one that verifies with its hub's key is kept. Once validated here, the version
serves exactly those bytes plus this hub's own attestation (hub.provenance.signing.version_countersign).
"""

from __future__ import annotations

import hashlib
import logging
import re
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import BinaryIO
from urllib.parse import urlsplit

from celery import shared_task
from django.conf import settings
from django.contrib.auth.hashers import make_password
from django.db import connection, transaction
from django.db.models import Q
from django.urls import Resolver404, resolve, reverse
from django.utils import timezone
from django.utils.dateparse import parse_datetime
from urllib3.exceptions import HTTPError as Urllib3Error

from hub.accounts.models import MIRROR_SEPARATOR, Role, User
from hub.accounts.services import user_set_role
from hub.audit.services import audit_record
from hub.catalog.blobstore import BlobIntegrityError, open_blob
from hub.catalog.models import (
    NAME_VALIDATOR,
    BaseModel,
    Blob,
    FetchState,
    RepoKind,
    Repository,
    RepositoryOrigin,
    Version,
    VersionOrigin,
    VersionState,
)
from hub.catalog.services import (
    BlobRefused,
    blob_put_stream,
    repository_get_or_create,
    repository_search_refresh,
    repository_set_summary,
    version_claim_for_validation,
    version_create,
    version_fill_listed,
    version_list_remote,
    version_record_validation,
    version_set_state,
)
from hub.catalog.uploads import UploadError, check_upload_path, check_upload_sizes
from hub.catalog.validation import is_hub_made
from hub.core.errors import ServiceError
from hub.federation.actors import public_url
from hub.federation.models import (
    InboxActivity,
    Peer,
    PeerMode,
    PeerState,
    RemoteItem,
    RemoteItemState,
    TakedownPolicy,
)
from hub.federation.services import base_url_of
from hub.moderation.models import BlockedDigest, ReportReason, Takedown, TakedownKind
from hub.moderation.services.refusals import ModerationError
from hub.moderation.services.reports import report_create
from hub.moderation.services.takedowns import takedown_lift, withdraw
from hub.moderation.targets import target_of_version
from hub.provenance.signing import SIGNED_FILES, origin_signature_keep, relayed_verify, stored_verify
from workers.engine.signing import (
    SIGNATURE_FILE,
    ProvenanceError,
    PublicKey,
    attestation_statements,
    is_later_attestation,
    is_mirror_attestation,
)

log = logging.getLogger(__name__)
QUEUE = "federation"


class MirrorRefused(ServiceError):
    """An activity this hub will not act on; the message names the field and what was expected."""

    code = "mirror_refused"
    status = 422


@dataclass(frozen=True)
class RemoteFile:
    path: str
    sha256: str
    size: int
    url: str


@dataclass(frozen=True)
class RemoteVersion:
    """The parts of a version object mirroring needs, checked."""

    object_id: str
    kind: str
    owner: str
    name: str
    number: int
    license: str
    base_model: str
    repository_url: str
    files: tuple[RemoteFile, ...]  # what its uploader sent: validated again here
    signed: tuple[RemoteFile, ...] = ()  # what the origin made that its model.sig signs: kept byte for byte

    @property
    def origin(self) -> str:
        return base_url_of(self.object_id)

    @property
    def total_bytes(self) -> int:
        return sum(f.size for f in self.files)


def host_slug(base_url: str) -> str:
    """The origin's host and port as a username part: 127.0.0.2:8001 -> 127.0.0.2-8001 (what a Hugging Face repo id
    allows: letters, digits, '.', '-')."""
    return re.sub(r"-+", "-", re.sub(r"[^A-Za-z0-9.]", "-", urlsplit(base_url).netloc)).strip("-")


def mirror_namespace(owner: str, origin: str) -> str:
    """The local namespace of an origin namespace: `alice__127.0.0.2-8001` (local names never contain '__')."""
    return f"{owner}{MIRROR_SEPARATOR}{host_slug(origin)}"


def _field(data: dict, key: str, kind: type, where: str) -> object:
    value = data.get(key)
    if not isinstance(value, kind) or isinstance(value, bool) or value in ("", None):
        raise MirrorRefused(f"{where}.{key}: expected a {kind.__name__}, got {value!r}"[:500])
    return value


def parse_version(obj: object) -> RemoteVersion:
    """A version object as sent by objects.version_object; refused when a field mirroring needs is missing."""
    if not isinstance(obj, dict) or obj.get("type") != "Document":
        raise MirrorRefused("object: expected a version Document")
    kind = _field(obj, "kind", str, "object")
    if kind not in RepoKind.values:
        raise MirrorRefused(f"object.kind: expected one of {', '.join(RepoKind.values)}, got {kind!r}")
    repository = _field(obj, "repository", dict, "object")
    files = _field(obj, "files", list, "object")
    parsed: list[RemoteFile] = []
    made: list[RemoteFile] = []
    for i, entry in enumerate(files):
        if not isinstance(entry, dict):
            raise MirrorRefused(f"object.files[{i}]: expected an object with path, sha256, size, url")
        sha256 = str(_field(entry, "sha256", str, f"object.files[{i}]")).lower()
        if len(sha256) != 64 or any(c not in "0123456789abcdef" for c in sha256):
            raise MirrorRefused(f"object.files[{i}].sha256: expected 64 hex digits")
        url = _http_url(_field(entry, "url", str, f"object.files[{i}]"))
        if not url:
            raise MirrorRefused(f"object.files[{i}].url: expected an http(s) URL")
        try:
            path = check_upload_path(str(_field(entry, "path", str, f"object.files[{i}]")))
        except UploadError as exc:
            raise MirrorRefused(f"object.files[{i}].path: {exc.message}") from None
        if is_later_attestation(path):
            continue  # the origin's evaluations: this hub evaluates for itself
        (made if is_hub_made(path) else parsed).append(RemoteFile(
            path=path, sha256=sha256, size=int(_field(entry, "size", int, f"object.files[{i}]")), url=url))
    try:
        check_upload_sizes((f.path, f.size) for f in parsed)
    except UploadError as exc:
        raise MirrorRefused(f"object.files: {exc.message}") from None
    object_id = _http_url(_field(obj, "id", str, "object"))
    if not object_id:
        raise MirrorRefused("object.id: expected an http(s) URL")
    owner = str(_field(repository, "owner", str, "object.repository"))
    if not NAME_VALIDATOR.regex.fullmatch(owner) or MIRROR_SEPARATOR in owner:
        raise MirrorRefused(f"object.repository.owner: {owner[:100]!r}: {NAME_VALIDATOR.message}, without "
                            f"{MIRROR_SEPARATOR!r}")
    name = str(_field(repository, "name", str, "object.repository"))
    if not NAME_VALIDATOR.regex.fullmatch(name):
        raise MirrorRefused(f"object.repository.name: {name[:100]!r}: {NAME_VALIDATOR.message}")
    return RemoteVersion(
        object_id=object_id, kind=str(kind), owner=owner, name=name,
        number=int(_field(obj, "version", int, "object")), license=str(obj.get("license") or ""),
        base_model=str(obj.get("baseModel") or ""), repository_url=_http_url(repository.get("url")) or object_id,
        files=tuple(parsed), signed=tuple(made))


def _http_url(value: object) -> str:
    """`value` when it is an http(s) URL (it is shown as a link), else ''."""
    return value if isinstance(value, str) and urlsplit(value).scheme in ("http", "https") else ""


# --- receiving ----------------------------------------------------------------------------------------------------


def activity_received(*, peer: Peer, activity: dict) -> None:
    """Act on a content activity from `peer` (its HTTP signature already verified by the inbox)."""
    _dispatch(peer, activity, authority=peer.base_url)


def _is_ours(object_id: str) -> bool:
    """Whether an object id names an item of this hub (relayed back to us by a hub that mirrors it)."""
    return base_url_of(object_id) == base_url_of(public_url())


def announce_to_followers(activity: dict, *, origin: VersionOrigin, version: Version | None = None) -> None:
    """Re-share a peer's signed activity about `origin`'s item with this hub's followers, except its origin hub and
    the hub it came from (they have it already: no activity travels back to where it came from). With the `version`
    held here, the Announce offers this hub's copies of its files."""
    from hub.federation.delivery import activity_publish, follower_inboxes
    from hub.federation.objects import announce_activity

    skip = {base_url_of(origin.object_id), origin.peer_url}
    inboxes = [inbox for inbox in follower_inboxes(None) if base_url_of(inbox) not in skip]
    activity_publish(actor="hub", activity=announce_activity(activity, version), inboxes=inboxes)


def _dispatch(peer: Peer, activity: dict, *, authority: str, sources: dict[str, list[str]] | None = None,
              attestations: list[dict] | None = None) -> None:
    kind = activity.get("type")
    relayed = sources is not None
    if kind in ("Create", "Update"):
        _version_received(peer, activity, authority=authority, sources=sources or {}, attestations=attestations or [])
    elif kind == "Delete":
        _delete_received(peer, activity, authority=authority)
    elif kind == "Announce" and not relayed:
        inner = activity.get("object")
        if not isinstance(inner, dict):
            raise MirrorRefused("Announce.object: expected the announced activity, embedded with its signature")
        target = inner.get("object")
        target_id = target.get("id") if isinstance(target, dict) else target
        if isinstance(target_id, str) and _is_ours(target_id):
            return  # our own item (or its takedown), relayed back by a hub that mirrors it
        _dispatch(peer, inner, authority=_signer_hub(inner), sources=announced_sources(activity),
                  attestations=announced_attestations(activity))
    elif kind == "Flag" and not relayed:
        _flag_received(peer, activity)
    else:
        log.info("ignored a %s activity from %s", kind, peer.base_url)


def announced_sources(announce: dict) -> dict[str, list[str]]:
    """More places to fetch files from, by sha256: the announcing hub's own copies (objects.announce_activity).
    Anyone may offer bytes; what is stored is only ever what hashes to the sha256 the origin signed."""
    sources: dict[str, list[str]] = {}
    for entry in announce.get("sources") or []:
        if isinstance(entry, dict) and isinstance(entry.get("sha256"), str) and _http_url(entry.get("url")):
            sources.setdefault(entry["sha256"].lower(), []).append(entry["url"])
    return sources


def announced_attestations(announce: dict) -> list[dict]:
    """The mirror attestations an Announce carries ({path, sha256, size, url}; objects.announce_activity), those
    well formed; each is checked against its signer's key before it is kept."""
    kept = []
    for entry in announce.get("attestations") or []:
        if (isinstance(entry, dict) and isinstance(entry.get("path"), str) and is_mirror_attestation(entry["path"])
                and re.fullmatch(r"[0-9a-f]{64}", str(entry.get("sha256"))) and _http_url(entry.get("url"))
                and isinstance(entry.get("size"), int) and 0 < entry["size"] <= settings.NOMOAT_FEDERATION_MAX_ACTIVITY_BYTES
                and "/.." not in entry["path"]):
            kept.append({k: entry[k] for k in ("path", "sha256", "size", "url")})
    return kept


def _signer_hub(activity: dict) -> str:
    """The hub whose actor signed an embedded activity (an Announce's object); unsigned or forged ones are refused."""
    from hub.federation.client import RemoteError
    from hub.federation.signatures import SignatureRefused, embedded_signature_verify

    try:
        return base_url_of(embedded_signature_verify(activity))
    except (SignatureRefused, RemoteError) as exc:
        raise MirrorRefused(f"Announce.object.proof: not verifiable as its origin's ({exc})", status=403) from None


def _refuse_unless_origin(object_id: str, authority: str, what: str) -> None:
    if base_url_of(object_id) != authority:
        raise MirrorRefused(f"{what}: {object_id} belongs to {base_url_of(object_id)}, but came from {authority}; only "
                            "an item's origin hub may create, update or delete it", status=403)


def policy_refusal(peer: Peer, item: RemoteVersion) -> str | None:
    """Why the peer's policy keeps this version out, or None. Namespace lists match `owner` or `owner@host`."""
    names = {item.owner, f"{item.owner}@{urlsplit(item.origin).netloc}"}
    if Peer.objects.filter(base_url=item.origin, state=PeerState.BLOCKED).exists():
        return f"its origin {item.origin} is a blocked hub here"
    if peer.namespaces_block and names & set(peer.namespaces_block):
        return f"namespace {item.owner} is blocked for {peer.base_url}"
    if peer.namespaces_allow and not names & set(peer.namespaces_allow):
        return f"namespace {item.owner} is not in the allow list for {peer.base_url}"
    if peer.licenses and item.license not in peer.licenses:
        return f"license {item.license or '(none)'} is not one of {', '.join(peer.licenses)}"
    if peer.max_bytes is not None and item.total_bytes > peer.max_bytes:
        return f"{item.total_bytes} bytes is over this peer's limit of {peer.max_bytes} bytes"
    return None


def _version_received(peer: Peer, activity: dict, *, authority: str, sources: dict[str, list[str]],
                      attestations: list[dict]) -> None:
    item = parse_version(activity.get("object"))
    if _is_ours(item.object_id):
        return  # our own item, relayed back by a hub that mirrors it
    _refuse_unless_origin(item.object_id, authority, f"{activity.get('type')}.object.id")
    known = VersionOrigin.objects.select_related("version").filter(object_id=item.object_id).first()
    if known is not None:
        if activity.get("type") == "Update":
            _metadata_update(known, activity["object"])
        elif known.fetch_state == FetchState.TAKEN_DOWN and _published(activity) and _newer(known, activity):
            origin_republished(origin=known, activity=activity)
        return  # the same object again (a retry, a catch-up, an Announce of what we have): one version
    refusal = policy_refusal(peer, item)
    if refusal:
        log.info("not mirroring %s: %s", item.object_id, refusal)
        return
    if peer.mode in (PeerMode.METADATA, PeerMode.ON_DEMAND):
        # Listed now; the files stay at the origin (metadata) or are fetched when first downloaded (on_demand).
        listed, _ = RemoteItem.objects.get_or_create(object_id=item.object_id, defaults={
            "peer": peer, "mode": peer.mode, "activity": activity, "sources": sources, "attestations": attestations})
        _record_listed(peer, item, activity, listed)
        return
    mirror_version.delay_on_commit(peer.pk, activity, sources, attestations)


@transaction.atomic
def remote_item_requested(*, item_id: int) -> RemoteItem:
    """Someone asked for a file of an item listed on demand: fetch it (once), exactly as a mirror would have at
    once. A metadata item, or one already asked for, is returned unchanged."""
    listed = RemoteItem.objects.select_for_update().get(pk=item_id)
    if listed.mode == PeerMode.ON_DEMAND and listed.state == RemoteItemState.LISTED:
        listed.state, listed.requested_at = RemoteItemState.FETCHING, timezone.now()
        listed.save(update_fields=["state", "requested_at"])
        VersionOrigin.objects.filter(object_id=listed.object_id, fetch_state=FetchState.METADATA).update(
            fetch_state=FetchState.FETCHING)
        mirror_version.delay_on_commit(listed.peer_id, listed.activity, listed.sources, listed.attestations)
    return listed


def _metadata_update(origin: VersionOrigin, obj: dict) -> None:
    """An Update of a version we hold: its card text and summary (its files never change; a new file is a new
    version at the origin)."""
    card = obj.get("card")
    if isinstance(card, str):
        Version.objects.filter(pk=origin.version_id).update(card_text=card)
        repository_search_refresh(repository_ids=[origin.version.repository_id])
    if isinstance(obj.get("summary"), str):
        repository_set_summary(repository=origin.version.repository, summary=obj["summary"])


# --- fetching -----------------------------------------------------------------------------------------------------


class OriginKeysUnavailable(Exception):
    """The origin's signing keys could not be fetched (it may be down for a while): the task is retried."""


@shared_task(name="federation.mirror_version", queue=QUEUE, acks_late=True, autoretry_for=(OriginKeysUnavailable,),
             retry_backoff=30, max_retries=6)
def mirror_version(peer_id: int, activity: dict, sources: dict[str, list[str]] | None = None,
                   attestations: list[dict] | None = None) -> str:
    """Fetch a received version's files (from their URLs, then `sources`: {sha256: [url]}), check the origin's
    model.sig over them, keep the relaying hubs' `attestations` that verify, and record it for validation;
    idempotent by its object id."""
    peer = Peer.objects.filter(pk=peer_id).first()
    if peer is None:
        return "peer gone"
    item = parse_version(activity.get("object"))
    if VersionOrigin.objects.filter(object_id=item.object_id).exclude(version__state=VersionState.LISTED).exists():
        return "already mirrored"  # (a listed version is the one its files are fetched for)
    blobs, refusal = fetch_files(item, sources or {})
    kept: tuple[dict[str, Blob], dict[str, PublicKey]] | None = None
    if not refusal and any(f.path == SIGNATURE_FILE for f in item.signed):
        kept, refusal = _origin_signature(item, blobs, sources or {}, attestations or [])
    version = _record(peer, item, activity, blobs, refusal, kept)
    if version is None:
        return "already mirrored, or deleted at its origin meanwhile"
    return f"{version}: {'refused: ' + refusal if refusal else 'validating'}"


class _Capped:
    """A response body read as a stream, refused once it runs past the size the object declared."""

    def __init__(self, raw: BinaryIO, size: int) -> None:
        self.raw, self.size, self.left = raw, size, size

    def read(self, n: int = -1) -> bytes:
        data = self.raw.read(n)
        self.left -= len(data)
        if self.left < 0:
            raise BlobIntegrityError(f"the content is longer than the {self.size} bytes the object declared")
        return data


def fetch_files(item: RemoteVersion, sources: dict[str, list[str]], *,
                files: tuple[RemoteFile, ...] | None = None) -> tuple[dict[str, Blob], str]:
    """Each file (default: what the uploader sent), verified against its sha256, from the first of its URL and
    `sources` that serves it (content already held is not fetched again); else the refusal, naming the file and
    what each source did."""
    blobs: dict[str, Blob] = {}
    for file in item.files if files is None else files:
        held = Blob.objects.filter(sha256=file.sha256).first()
        problems = []
        for url in dict.fromkeys([file.url, *sources.get(file.sha256, [])]):
            if held is not None:
                break
            try:
                held = _fetch(url, file)
            except BlobRefused as exc:
                return blobs, f"{file.path}: {exc.message}"
            except BlobIntegrityError as exc:
                problems.append(f"{url} does not match the sha256 the origin published ({exc})")
            except SourceFailed as exc:
                problems.append(str(exc))
        if held is None:
            return blobs, f"{file.path}: {'; '.join(problems)}"
        blobs[file.path] = held
    return blobs, ""


def signing_keys_of(hub: str) -> list[PublicKey]:
    """The keys `hub` signs model.sig and attestations with, as it serves them at /api/v1/keys (signed GET)."""
    from hub.federation.client import RemoteError, signed_get

    try:
        response = signed_get(f"{hub}/api/v1/keys", accept="application/json")  # a REST document, not AS2
        if response.status_code != 200:
            raise RemoteError(f"HTTP {response.status_code}")
        keys = [PublicKey(k["pem"].encode(), k["status"], hub) for k in response.json()["keys"]
                if k.get("status") in ("current", "previous", "revoked")]
    except (RemoteError, ValueError, TypeError, KeyError, AttributeError) as exc:
        raise OriginKeysUnavailable(f"the signing keys of {hub} (/api/v1/keys): {exc}") from None
    if not keys:
        raise OriginKeysUnavailable(f"{hub}/api/v1/keys lists no signing key")
    return keys


def _origin_signature(item: RemoteVersion, blobs: dict[str, Blob], sources: dict[str, list[str]],
                      attestations: list[dict]) -> tuple[tuple[dict[str, Blob], dict[str, PublicKey]] | None, str]:
    """The origin's signed files and the relayed attestations worth keeping ({path: blob}, {path: signing key}),
    or the refusal: a model.sig that does not verify over the files with the origin's key keeps the copy out."""
    signed, refusal = fetch_files(item, sources, files=item.signed)
    if refusal:
        return None, refusal
    keys = signing_keys_of(item.origin)
    folder = {p: b.sha256 for p, b in {**blobs, **signed}.items()}
    try:
        verified = stored_verify(name=f"{item.owner}--{item.name}--v{item.number}", files=folder, keys=keys)
    except ProvenanceError as exc:
        return None, f"{SIGNATURE_FILE}: the origin's signature does not verify with its keys ({exc})"
    signers = {path: verified.key for path in signed}
    for entry in attestations:
        path = entry["path"]
        file = RemoteFile(path=path, sha256=entry["sha256"], size=entry["size"], url=entry["url"])
        fetched, problem = fetch_files(item, {}, files=(file,))
        try:
            if problem:
                raise ProvenanceError(problem)
            hub = _attesting_hub(fetched[path])
            signers[path] = relayed_verify(path=path, blob=fetched[path], keys=signing_keys_of(hub),
                                           signed=verified.files)
            signed[path] = fetched[path]
        except (ProvenanceError, OriginKeysUnavailable, ValueError, KeyError, TypeError) as exc:
            log.info("not keeping the relayed attestation %s of %s: %s", path, item.object_id, exc)
    return (signed, signers), ""


def _attesting_hub(blob: Blob) -> str:
    """The hub a mirror attestation says made it (read unverified: only to know whose keys to check it with)."""
    with open_blob(blob.sha256) as stream:
        statements = attestation_statements(stream.read())
    hub = _http_url(statements[0].get("predicate", {}).get("hub")) if statements else ""
    if not hub:
        raise ProvenanceError("names no hub that made it")
    return base_url_of(hub)


class SourceFailed(Exception):
    """One place a file could not be fetched from (the message says where and why)."""


def _fetch(url: str, file: RemoteFile) -> Blob:
    from hub.federation.client import RemoteError, signed_get

    try:
        with signed_get(url, stream=True, accept="*/*") as response:
            if response.status_code != 200:
                raise SourceFailed(f"{url} answered HTTP {response.status_code}")
            response.raw.decode_content = True
            return blob_put_stream(stream=_Capped(response.raw, file.size), expected_sha256=file.sha256)
    except (RemoteError, OSError, Urllib3Error) as exc:
        raise SourceFailed(f"could not fetch {url} ({exc})") from None


def _shadow_user(item: RemoteVersion, *, trusted: bool) -> User:
    """The namespace a remote owner's items live in here: no password, never a local account."""
    user = _shadow_account(mirror_namespace(item.owner, item.origin), bio=f"Mirrored from {item.origin} ({item.owner})")
    role = Role.TRUSTED if trusted else Role.USER
    if user.role != role:
        user_set_role(user=user, role=role, reason=f"mirrored namespace: review={'no' if trusted else 'yes'}")
    return user


def _object_lock(object_id: str) -> None:
    """Serialise the recording and the deletion of one object (PostgreSQL; for the rest of this transaction), so a
    Delete processed while its Create was being fetched is never lost."""
    if connection.vendor == "postgresql":
        key = int.from_bytes(hashlib.sha256(object_id.encode()).digest()[:8], "big", signed=True)
        with connection.cursor() as cursor:
            cursor.execute("SELECT pg_advisory_xact_lock(%s)", [key])


def _deleted_at_origin(object_id: str) -> bool:
    """Whether the origin's Delete of this object reached the inbox already (its Create is being caught up with)."""
    return InboxActivity.objects.filter(type="Delete", peer__base_url=base_url_of(object_id)).filter(
        Q(data__object__id=object_id) | Q(data__object=object_id)).exists()


def _shadow_repository(peer: Peer, item: RemoteVersion, activity: dict) -> tuple[User, BaseModel | None, Repository]:
    """The shadow namespace, base model and repository (with its origin) a received version goes into here."""
    owner = _shadow_user(item, trusted=not peer.review)
    base_model = BaseModel.objects.filter(name=item.base_model).first()
    repository = repository_get_or_create(kind=item.kind, owner=owner, name=item.name, base_model=base_model)
    RepositoryOrigin.objects.get_or_create(repository=repository, defaults={
        "hub": item.origin, "url": item.repository_url, "owner": item.owner, "name": item.name})
    summary = activity["object"].get("summary")
    if isinstance(summary, str) and summary and not repository.summary:
        repository_set_summary(repository=repository, summary=summary)
    return owner, base_model, repository


@transaction.atomic
def _record_listed(peer: Peer, item: RemoteVersion, activity: dict, listed: RemoteItem) -> Version | None:
    """A version a peer followed for metadata or on demand sent, in the catalog as a version in state `listed`:
    browsed, searched and shown with its origin like a mirrored one, its files held at the origin (each downloads
    through RemoteItemFile); never validated, evaluated, signed or stacked until its files are fetched (`_record`
    then fills in this same version). Re-shared with this hub's followers once committed."""
    _object_lock(item.object_id)
    if VersionOrigin.objects.filter(object_id=item.object_id).exists() or _deleted_at_origin(item.object_id):
        return None
    owner, base_model, repository = _shadow_repository(peer, item, activity)
    card = activity["object"].get("card")
    version = version_list_remote(repository=repository, digests={f.path: f.sha256 for f in item.files},
                                  card_text=card if isinstance(card, str) else "", created_by=owner,
                                  base_model=base_model)
    files = [{"path": f.path, "sha256": f.sha256, "size": f.size, "origin_url": f.url,
              "url": reverse("api:federation-item-file", args=[listed.pk, f.path])}
             for f in sorted((*item.files, *item.signed), key=lambda f: f.path)]
    origin = VersionOrigin.objects.create(version=version, object_id=item.object_id, number=item.number,
                                          peer_url=peer.base_url, activity=activity,
                                          origin_published_at=_published(activity), fetch_state=FetchState.METADATA,
                                          listed_files=files, on_demand=listed.mode == PeerMode.ON_DEMAND)
    transaction.on_commit(lambda: announce_to_followers(activity, origin=origin))
    return version


def remote_items_list_missing() -> int:
    """List in the catalog every listed RemoteItem that has no version there (those received before the catalog
    listed them, catalog migration 0008), as if its activity came again; idempotent. How many were listed now."""
    listed = 0
    for remote in RemoteItem.objects.filter(state=RemoteItemState.LISTED, peer__state=PeerState.ALLOWED).exclude(
            object_id__in=VersionOrigin.objects.values("object_id")).select_related("peer").order_by("pk"):
        try:
            item = parse_version(remote.activity.get("object"))
        except MirrorRefused as exc:
            log.warning("remote item %s not listed: %s", remote.object_id, exc.message)
            continue
        refusal = policy_refusal(remote.peer, item)
        if refusal:  # the policy changed since it came: listed no more than a new one would be
            log.info("remote item %s not listed: %s", remote.object_id, refusal)
            continue
        if _record_listed(remote.peer, item, remote.activity, remote) is not None:
            listed += 1
    return listed


@transaction.atomic
def _record(peer: Peer, item: RemoteVersion, activity: dict, blobs: dict[str, Blob], refusal: str,
            kept: tuple[dict[str, Blob], dict[str, PublicKey]] | None = None) -> Version | None:
    _object_lock(item.object_id)
    known = VersionOrigin.objects.select_related("version").filter(object_id=item.object_id).first()
    if (known is not None and not known.version.is_listed) or _deleted_at_origin(item.object_id):
        return None
    fetch_state = FetchState.REFUSED if refusal else FetchState.MIRRORED
    owner, base_model, repository = _shadow_repository(peer, item, activity)
    if known is None:
        version = version_create(repository=repository, files=blobs, created_by=owner, base_model=base_model)
        VersionOrigin.objects.create(version=version, object_id=item.object_id, number=item.number,
                                     peer_url=peer.base_url, activity=activity,
                                     origin_published_at=_published(activity), fetch_state=fetch_state,
                                     refusal=refusal)
    else:  # listed (on demand): its files fetched now, the same version goes on to validation
        version = version_fill_listed(version=known.version, files=blobs)
        known.fetch_state, known.refusal, known.listed_files = fetch_state, refusal, []
        known.save(update_fields=["fetch_state", "refusal", "listed_files"])
    if kept is not None and not refusal:
        origin_signature_keep(version=version, hub=item.origin, files=kept[0], keys=kept[1])
    if refusal:
        # Recorded through the normal validation path, as a failed check: never served, and the reason shows.
        claimed = version_claim_for_validation(version_id=version.pk, lease_seconds=settings.VALIDATION_LEASE_SECONDS)
        version_record_validation(version=claimed, report={"kind": item.kind, "ok": False, "stats": {}, "checks": [
            {"name": "federation.fetch", "passed": False, "message": refusal, "skipped": False}]})
    return version


# --- takedowns and reports ----------------------------------------------------------------------------------------


def _delete_received(peer: Peer, activity: dict, *, authority: str) -> None:
    tombstone = activity.get("object")
    object_id = tombstone.get("id") if isinstance(tombstone, dict) else tombstone
    if not isinstance(object_id, str):
        raise MirrorRefused("Delete.object: expected a Tombstone with the id of the deleted version")
    if _is_ours(object_id):
        return  # our own takedown, relayed back
    _refuse_unless_origin(object_id, authority, "Delete.object.id")
    _object_lock(object_id)
    # A listed item is no longer listed (its files were never here: nothing to deny).
    RemoteItem.objects.filter(object_id=object_id).update(state=RemoteItemState.REMOVED)
    origin = VersionOrigin.objects.select_related("version__repository").filter(object_id=object_id).first()
    if origin is None or origin.fetch_state == FetchState.TAKEN_DOWN or not _newer(origin, activity):
        return  # not held here, already taken down (the same Delete relayed again), or older than what we hold
    reason = str((tombstone.get("reason") if isinstance(tombstone, dict) else "") or activity.get("summary")
                 or "deleted at its origin")[:2000]
    why = f"taken down at its origin {base_url_of(object_id)}: {reason}"
    if peer.takedowns == TakedownPolicy.REVIEW and not origin.version.is_listed:  # (a listed one holds nothing)
        _report_for_review(peer, origin.version, why)
    else:
        origin_takedown_honour(origin=origin, reason=why, activity=activity)


@transaction.atomic
def origin_takedown_honour(*, origin: VersionOrigin, reason: str, activity: dict) -> None:
    """Stop serving a mirrored version its origin took down, deny its files' digests, audit it, and re-share the
    origin's Delete with this hub's followers."""
    version = Version.objects.select_for_update().get(pk=origin.version_id)
    for file in version.files.select_related("blob"):
        if is_denied_content(file.path):
            BlockedDigest.objects.get_or_create(sha256=file.blob.sha256,
                                                defaults={"reason": reason, "origin": origin.object_id})
    target = target_of_version(version)
    origin.fetch_state, origin.refusal = FetchState.TAKEN_DOWN, reason
    origin.origin_published_at = _published(activity) or origin.origin_published_at
    origin.save(update_fields=["fetch_state", "refusal", "origin_published_at"])
    origin_takedown_enforce(origin=origin)
    audit_record(actor=None, action="takedown.origin", target_kind=target.kind, target_id=target.id,
                 target_label=target.label, before={"state": version.state},
                 after={"state": Version.objects.get(pk=version.pk).state, "fetch_state": FetchState.TAKEN_DOWN},
                 reason=reason)
    transaction.on_commit(lambda: announce_to_followers(activity, origin=origin))


def is_denied_content(path: str) -> bool:
    """Whether a taken-down version's file goes on the denylist: its weights or data, not its card, its JSON
    configs or the signature files, which unrelated versions share byte for byte."""
    return not (path == "README.md" or path.endswith(".json") or path in SIGNED_FILES or is_later_attestation(path))


@transaction.atomic
def origin_republished(*, origin: VersionOrigin, activity: dict) -> None:
    """The origin published again what it took down (a moderator there lifted the takedown): serve it again, and
    let its files back in. Only a Create newer than the Delete counts, so a replayed old one changes nothing."""
    _object_lock(origin.object_id)
    BlockedDigest.objects.filter(origin=origin.object_id).delete()
    version = origin.version
    relisted = bool(origin.listed_files) and version.state == VersionState.UNPUBLISHED  # was listed, never held
    origin.fetch_state = FetchState.METADATA if relisted else FetchState.MIRRORED
    origin.refusal, origin.activity, origin.origin_published_at = "", activity, _published(activity)
    origin.save(update_fields=["fetch_state", "refusal", "activity", "origin_published_at"])
    if relisted:  # (a held one is re-shared when the lifted takedown publishes it again)
        version_set_state(version=version, state=VersionState.LISTED, reason="")
        RemoteItem.objects.filter(object_id=origin.object_id).update(state=RemoteItemState.LISTED)
        transaction.on_commit(lambda: announce_to_followers(activity, origin=origin))
        return
    takedown = Takedown.objects.filter(target_kind=version.repository.kind, target_id=version.pk,
                                       kind=TakedownKind.UNPUBLISHED, lifted_at__isnull=True).first()
    if takedown is not None:
        takedown_lift(takedown_id=takedown.pk, moderator=None,
                      reason=f"published again at its origin {base_url_of(origin.object_id)}")


def _published(activity: dict) -> datetime | None:
    """When the origin says it published an activity (covered by its signature), or None."""
    value = activity.get("published")
    try:
        published = parse_datetime(value) if isinstance(value, str) else None
    except ValueError:
        return None
    return timezone.make_aware(published, UTC) if published and timezone.is_naive(published) else published


def _newer(origin: VersionOrigin, activity: dict) -> bool:
    """Whether an activity of the origin is newer than the last one acted on (a replayed older one is not)."""
    published = _published(activity)
    return published is None or origin.origin_published_at is None or published > origin.origin_published_at


@transaction.atomic
def origin_takedown_enforce(*, origin: VersionOrigin) -> None:
    """Withdraw a mirrored version its origin took down, once it is published (the takedown may arrive while it is
    still being validated or reviewed: then this runs again when it is published)."""
    version = Version.objects.select_for_update().get(pk=origin.version_id)
    if origin.fetch_state == FetchState.TAKEN_DOWN and version.state == VersionState.PUBLISHED:
        withdraw(target_of_version(version), kind=TakedownKind.UNPUBLISHED, by=None, reason=origin.refusal)
    elif origin.fetch_state == FetchState.TAKEN_DOWN and version.is_listed:  # no files here: no longer listed
        version_set_state(version=version, state=VersionState.UNPUBLISHED, reason=origin.refusal)


def peer_user(peer: Peer) -> User:
    """Who reports from a peer hub are filed as here (a shadow account like a mirrored namespace)."""
    return _shadow_account(f"{host_slug(peer.base_url)}{MIRROR_SEPARATOR}hub", bio=f"The hub {peer.base_url}")


def _shadow_account(username: str, *, bio: str) -> User:
    """A user row that stands for someone elsewhere: no usable password (it cannot sign in), and a name with
    MIRROR_SEPARATOR, which no local account may have (so it is never listed as one)."""
    user, _ = User.objects.get_or_create(username=username, defaults={"bio": bio, "password": make_password(None)})
    return user


def _report_for_review(peer: Peer, version: Version, comment: str, reason: str = ReportReason.OTHER) -> None:
    target = target_of_version(version)
    try:
        report_create(reporter=peer_user(peer), kind=target.kind, target_id=target.id, reason=reason,
                      comment=comment)
    except ModerationError as exc:  # already reported by that hub, or no longer published
        log.info("report from %s on %s not filed: %s", peer.base_url, target.label, exc.message)


def local_version_of(object_id: str) -> Version | None:
    """The local version an object id of ours names (its page URL), or None."""
    if base_url_of(object_id) != base_url_of(public_url()):
        return None
    try:
        match = resolve(urlsplit(object_id).path)
    except Resolver404:
        return None
    if not match.url_name or not match.url_name.endswith("-version-page"):
        return None
    return (Version.objects.filter(repository__kind=match.kwargs["kind"], repository__owner__username=match.kwargs[
        "owner"], repository__name=match.kwargs["name"], number=match.kwargs["number"]).select_related(
        "repository").first())


def _flag_received(peer: Peer, activity: dict) -> None:
    objects = activity.get("object")
    reason = activity.get("reason") if activity.get("reason") in ReportReason.values else ReportReason.OTHER
    comment = str(activity.get("content") or activity.get("summary") or "reported by a peer hub")[:5000]
    for object_id in objects if isinstance(objects, list) else [objects]:
        version = local_version_of(object_id) if isinstance(object_id, str) else None
        if version is not None and not hasattr(version, "origin"):
            _report_for_review(peer, version, f"from {peer.base_url}: {comment}", reason=reason)
