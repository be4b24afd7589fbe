"""Local actors and their URLs: the hub's Application actor and one Person per local namespace.

URL shapes (every id starts with settings.NOMOAT_PUBLIC_URL, written {P} here):
  {P}/federation/actor                      the hub (Application); its key id is {P}/federation/actor#main-key
  {P}/federation/actor/{inbox,outbox,followers,following}
  {P}/federation/users/<username>           a namespace (Person), with the same four collections
  {P}/federation/inbox                      the shared inbox
  {P}/federation/activities/<uuid>          an activity we published (served as JSON)
WebFinger: acct:hub@<host:port> is the hub actor, acct:<username>@<host:port> a namespace.
"""

from __future__ import annotations

from datetime import datetime
from urllib.parse import urlsplit

from django.conf import settings
from django.urls import reverse

from hub.accounts.models import MIRROR_SEPARATOR, User
from hub.federation.keys import actor_key, retired_keys
from hub.federation.models import KeyKind

AS_PUBLIC = "https://www.w3.org/ns/activitystreams#Public"
CONTEXT = ["https://www.w3.org/ns/activitystreams", "https://w3id.org/security/v1"]
ACTIVITY_JSON = "application/activity+json"
HUB_ACTOR_NAME = "hub"  # the WebFinger user part and the `actor` argument of activity_publish for the hub


def public_url() -> str:
    """This hub's base URL as peers see it, no trailing slash."""
    return settings.NOMOAT_PUBLIC_URL.rstrip("/")


def public_host() -> str:
    """host[:port] of the public URL (the WebFinger domain)."""
    return urlsplit(public_url()).netloc


def absolute(path: str) -> str:
    return f"{public_url()}{path}"


def actor_url(user: User | None) -> str:
    """The id of the hub actor (None) or of a namespace actor."""
    if user is None:
        return absolute(reverse("federation-hub-actor"))
    return absolute(reverse("federation-user-actor", args=[user.username]))


def key_id(user: User | None) -> str:
    """The RSA key (HTTP signatures)."""
    return f"{actor_url(user)}#main-key"


def proof_key_id(user: User | None, name: str | None = None) -> str:
    """The Ed25519 key (object integrity proofs of activities), listed as the actor's assertionMethod: the current
    one, or the one whose id ends in `#name`."""
    return f"{actor_url(user)}#{name or actor_key(user).ed25519_key_name}"


def collection_url(user: User | None, name: str) -> str:
    """inbox, outbox, followers or following of an actor."""
    return f"{actor_url(user)}/{name}"


def shared_inbox_url() -> str:
    return absolute(reverse("federation-shared-inbox"))


def local_actor_user(name: str) -> User | None:
    """The namespace user behind a local actor name; None when there is none to show (a missing, inactive or
    mirrored namespace answers alike). Mirrored namespaces (`owner__host`) are not local actors."""
    if MIRROR_SEPARATOR in name:
        return None
    return User.objects.filter(username=name, is_active=True).first()


def resolve_local(actor: str) -> User | None:
    """`activity_publish`'s actor argument ('hub' or a local username) as the user (None for the hub)."""
    if actor == HUB_ACTOR_NAME:
        return None
    user = local_actor_user(actor)
    if user is None:
        raise ValueError(f"actor {actor!r}: expected 'hub' or the username of an active local user")
    return user


def actor_from_url(url: str) -> tuple[bool, User | None]:
    """(is ours, user) for an actor URL: (True, None) is the hub actor, (False, None) not a local actor."""
    if url == actor_url(None):
        return True, None
    prefix = absolute(reverse("federation-user-actor", args=["x"]))[:-1]
    if url.startswith(prefix):
        user = local_actor_user(url[len(prefix):])
        return user is not None, user
    return False, None


def page_url(user: User | None) -> str:
    """The web page of an actor: the hub's home, or the namespace's profile."""
    return absolute(reverse("home") if user is None else reverse("user-page", args=[user.username]))


def actor_document(user: User | None) -> dict:
    """The ActivityStreams actor of the hub (Application) or of a namespace (Person), with its public key."""
    url = actor_url(user)
    key = actor_key(user)
    if user is None:
        kind, name, username = "Application", f"nomoat hub {public_host()}", HUB_ACTOR_NAME
        summary = "A nomoat hub: LoRA adapters and datasets, federated."
    else:
        kind, name, username = "Person", user.get_full_name() or user.username, user.username
        summary = f"Adapters and datasets by {user.username} on {public_host()}."
    return {
        "@context": CONTEXT,
        "id": url,
        "type": kind,
        "preferredUsername": username,
        "name": name,
        "summary": summary,
        "url": page_url(user),
        "inbox": collection_url(user, "inbox"),
        "outbox": collection_url(user, "outbox"),
        "followers": collection_url(user, "followers"),
        "following": collection_url(user, "following"),
        "endpoints": {"sharedInbox": shared_inbox_url()},
        "manuallyApprovesFollowers": False,
        "discoverable": True,
        "publicKey": {"id": key_id(user), "owner": url, "publicKeyPem": key.public_key_pem},
        "assertionMethod": [_multikey(user, key.ed25519_key_name, key.ed25519_public_multibase), *(
            _multikey(user, old.name, old.public_key, old.revoked_at)
            for old in retired_keys(user).filter(kind=KeyKind.ED25519))],
    }


def _multikey(user: User | None, name: str, multibase: str, revoked: datetime | None = None) -> dict:
    """A verification method; a revoked one says since when (`revoked`, W3C Controlled Identifiers), and verifiers
    refuse what it signed."""
    method = {"id": proof_key_id(user, name), "type": "Multikey", "controller": actor_url(user),
              "publicKeyMultibase": multibase}
    if revoked is not None:
        method["revoked"] = revoked.strftime("%Y-%m-%dT%H:%M:%SZ")
    return method
