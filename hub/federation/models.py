"""What federation keeps: actor keys, peers (remote hubs) and their policies, follows both ways, and the
activities that came in (deduplicated by id) and went out (the outbox, with one delivery per inbox)."""

from __future__ import annotations

from django.conf import settings
from django.db import models
from django.db.models.functions import Coalesce
from django.utils import timezone


class ActorKey(models.Model):
    """The keys of a local actor: the hub's Application actor (user null) or one namespace's Person.

    RSA-2048 signs HTTP requests (what Mastodon verifies); Ed25519 signs activities themselves (FEP-8b32 object
    integrity proofs), so a relayed activity stays verifiable. Private keys are stored as PKCS#8 PEM encrypted
    with a key derived from SECRET_KEY; they are never served."""

    user = models.OneToOneField(settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.CASCADE,
                                related_name="federation_key")
    public_key_pem = models.TextField()
    private_key_pem = models.TextField()
    ed25519_public_multibase = models.CharField(max_length=100)  # multicodec ed25519-pub, base58btc ("z6Mk...")
    ed25519_private_pem = models.TextField()
    # The fragment of the Ed25519 key's id (`<actor>#<name>`): a new one at each rotation, so a proof names the key
    # that made it and the retired key stays listed under its own id.
    ed25519_key_name = models.CharField(max_length=40, default="ed25519-key")
    created_at = models.DateTimeField(default=timezone.now)

    class Meta:
        # One key per user (the OneToOne) and one for the hub: a user id of 0 never exists.
        constraints = [models.UniqueConstraint(Coalesce("user", models.Value(0)), name="federation_one_key_per_actor")]

    def __str__(self) -> str:
        return f"key of {self.user.username if self.user_id else 'the hub'}"


class KeyKind(models.TextChoices):
    RSA = "rsa", "RSA (HTTP signatures)"
    ED25519 = "ed25519", "Ed25519 (object integrity proofs)"


class RetiredActorKey(models.Model):
    """The public half of an actor key that a rotation replaced. An Ed25519 key stays in the actor document (its
    assertionMethod), so proofs it made stay verifiable, until it is revoked: then it is listed with `revoked`, and
    verifiers refuse what it signed. An RSA key signed only requests, checked when they arrived: it is kept here to
    show it retired or revoked, not served."""

    user = models.ForeignKey(settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.CASCADE,
                             related_name="+")  # null: the hub actor
    kind = models.CharField(max_length=8, choices=KeyKind.choices)
    name = models.CharField(max_length=40)  # the key id's fragment, unique per actor
    public_key = models.TextField()  # RSA: SubjectPublicKeyInfo PEM; Ed25519: publicKeyMultibase
    retired_at = models.DateTimeField(default=timezone.now)
    revoked_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        ordering = ["-retired_at", "-pk"]
        constraints = [models.UniqueConstraint(Coalesce("user", models.Value(0)), "name",
                                               name="federation_retired_key_once")]

    def __str__(self) -> str:
        return f"{self.kind} key {self.name} of {self.user.username if self.user_id else 'the hub'}"


class PeerState(models.TextChoices):
    ALLOWED = "allowed", "Allowed"
    BLOCKED = "blocked", "Blocked"


class PeerMode(models.TextChoices):
    METADATA = "metadata", "Metadata only"
    MIRROR = "mirror", "Mirror files"
    ON_DEMAND = "on_demand", "Fetch files on demand"


class TakedownPolicy(models.TextChoices):
    HONOUR = "honour", "Honour at once"
    REVIEW = "review", "Send to review"


class Peer(models.Model):
    """A remote hub (or any ActivityPub server an actor of which talks to us), and our policy for it."""

    base_url = models.URLField(max_length=500, unique=True)  # scheme://host[:port], no trailing slash
    actor_url = models.URLField(max_length=500, blank=True)  # its hub (Application) actor, when known
    inbox_url = models.URLField(max_length=500, blank=True)
    shared_inbox_url = models.URLField(max_length=500, blank=True)
    public_key_pem = models.TextField(blank=True)  # of its hub actor
    software = models.CharField(max_length=100, blank=True)  # from NodeInfo: "nomoat 0.1.0", "mastodon 4.3"
    state = models.CharField(max_length=10, choices=PeerState.choices, default=PeerState.ALLOWED)
    mode = models.CharField(max_length=10, choices=PeerMode.choices, default=PeerMode.MIRROR)
    namespaces_allow = models.JSONField(default=list, blank=True)  # empty: every namespace
    namespaces_block = models.JSONField(default=list, blank=True)
    licenses = models.JSONField(default=list, blank=True)  # empty: any license
    max_bytes = models.BigIntegerField(null=True, blank=True)  # null: no limit
    review = models.BooleanField(default=False)  # received items go to the local moderation queue first
    takedowns = models.CharField(max_length=10, choices=TakedownPolicy.choices, default=TakedownPolicy.HONOUR)
    created_at = models.DateTimeField(default=timezone.now)
    last_delivery_at = models.DateTimeField(null=True, blank=True)
    last_error = models.TextField(blank=True)
    failures = models.PositiveIntegerField(default=0)  # consecutive failed deliveries

    class Meta:
        ordering = ["base_url"]

    def __str__(self) -> str:
        return self.base_url


class RemoteActor(models.Model):
    """A remote actor whose key we have verified signatures with (cached; refetched once on a failed check)."""

    url = models.URLField(max_length=500, unique=True)
    peer = models.ForeignKey(Peer, on_delete=models.CASCADE, related_name="actors")
    key_id = models.URLField(max_length=600, blank=True)
    public_key_pem = models.TextField(blank=True)
    inbox_url = models.URLField(max_length=500, blank=True)
    shared_inbox_url = models.URLField(max_length=500, blank=True)
    preferred_username = models.CharField(max_length=200, blank=True)
    outbox_url = models.URLField(max_length=500, blank=True)
    proof_keys = models.JSONField(default=dict, blank=True)  # unrevoked assertionMethod id -> publicKeyMultibase
    fetched_at = models.DateTimeField(default=timezone.now)

    def __str__(self) -> str:
        return self.url


class FollowState(models.TextChoices):
    PENDING = "pending", "Waiting for the peer to accept"
    ACCEPTED = "accepted", "Accepted"
    REJECTED = "rejected", "Rejected"


class Follow(models.Model):
    """We follow a remote actor: a peer's hub actor (namespace '') or one of its namespaces."""

    peer = models.ForeignKey(Peer, on_delete=models.CASCADE, related_name="follows")
    namespace = models.CharField(max_length=200, blank=True)  # '' = the whole hub
    actor_url = models.URLField(max_length=500)  # the remote actor followed
    state = models.CharField(max_length=10, choices=FollowState.choices, default=FollowState.PENDING)
    activity_id = models.URLField(max_length=600, unique=True)  # id of our Follow activity
    outbox_cursor = models.CharField(max_length=600, blank=True)  # id of the newest outbox item caught up to
    created_by = models.ForeignKey(settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL,
                                   related_name="+")
    created_at = models.DateTimeField(default=timezone.now)
    updated_at = models.DateTimeField(default=timezone.now)
    caught_up_at = models.DateTimeField(null=True, blank=True)
    last_error = models.TextField(blank=True)

    class Meta:
        ordering = ["-created_at", "pk"]
        constraints = [models.UniqueConstraint(fields=["actor_url"], name="federation_follow_once")]

    def __str__(self) -> str:
        return f"follow of {self.actor_url} ({self.state})"


class Follower(models.Model):
    """A remote actor follows one of ours: the hub actor (user null) or a namespace."""

    actor_url = models.URLField(max_length=500)
    inbox_url = models.URLField(max_length=500)
    shared_inbox_url = models.URLField(max_length=500, blank=True)
    peer = models.ForeignKey(Peer, on_delete=models.CASCADE, related_name="followers")
    user = models.ForeignKey(settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.CASCADE,
                             related_name="federation_followers")
    state = models.CharField(max_length=10, choices=FollowState.choices, default=FollowState.ACCEPTED)
    activity_id = models.URLField(max_length=600)  # their Follow
    created_at = models.DateTimeField(default=timezone.now)

    class Meta:
        ordering = ["-created_at", "pk"]
        constraints = [models.UniqueConstraint(Coalesce("user", models.Value(0)), "actor_url",
                                               name="federation_follower_once")]

    def __str__(self) -> str:
        return f"{self.actor_url} follows {self.user.username if self.user_id else 'the hub'}"


class InboxState(models.TextChoices):
    RECEIVED = "received", "Received"
    PROCESSED = "processed", "Processed"
    FAILED = "failed", "Failed"


class InboxActivity(models.Model):
    """An activity received (by POST or by catch-up), once per id."""

    activity_id = models.URLField(max_length=600, unique=True)
    peer = models.ForeignKey(Peer, on_delete=models.CASCADE, related_name="inbox_activities")
    actor_url = models.URLField(max_length=500)
    type = models.CharField(max_length=50)
    data = models.JSONField()
    state = models.CharField(max_length=10, choices=InboxState.choices, default=InboxState.RECEIVED)
    error = models.TextField(blank=True)
    received_at = models.DateTimeField(default=timezone.now)
    processed_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        ordering = ["-received_at", "-pk"]

    def __str__(self) -> str:
        return f"{self.type} {self.activity_id}"


class OutboxActivity(models.Model):
    """An activity we published, as served in its actor's outbox (paged by pk, newest first)."""

    activity_id = models.URLField(max_length=600, unique=True)
    user = models.ForeignKey(settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.CASCADE,
                             related_name="+")  # null: the hub actor
    type = models.CharField(max_length=50)
    data = models.JSONField()
    public = models.BooleanField(default=True)  # listed in the outbox (a Follow/Accept addressed to one is not)
    created_at = models.DateTimeField(default=timezone.now)

    class Meta:
        ordering = ["-pk"]
        indexes = [models.Index(fields=["user", "public", "-id"])]

    def __str__(self) -> str:
        return f"{self.type} {self.activity_id}"


class DeliveryState(models.TextChoices):
    PENDING = "pending", "Pending"
    DELIVERED = "delivered", "Delivered"
    FAILED = "failed", "Failed (gave up)"


class Delivery(models.Model):
    """One activity to one inbox: attempts, last error; delivered once (idempotent per pair)."""

    activity = models.ForeignKey(OutboxActivity, on_delete=models.CASCADE, related_name="deliveries")
    inbox_url = models.URLField(max_length=500)
    peer = models.ForeignKey(Peer, null=True, blank=True, on_delete=models.SET_NULL, related_name="deliveries")
    state = models.CharField(max_length=10, choices=DeliveryState.choices, default=DeliveryState.PENDING)
    attempts = models.PositiveIntegerField(default=0)
    last_error = models.TextField(blank=True)
    created_at = models.DateTimeField(default=timezone.now)
    delivered_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        ordering = ["-pk"]
        constraints = [models.UniqueConstraint(fields=["activity", "inbox_url"], name="federation_delivery_once")]

    def __str__(self) -> str:
        return f"{self.activity.activity_id} → {self.inbox_url} ({self.state})"


class RemoteItemState(models.TextChoices):
    LISTED = "listed", "Listed; its files are held at its origin"
    FETCHING = "fetching", "Asked for: being fetched and validated"
    REMOVED = "removed", "Taken down at its origin"


class RemoteItem(models.Model):
    """A version a peer announced that this hub lists without holding its files, as the peer's policy says:
    `metadata` (the files stay where they are; a download is redirected to the origin's URL) or `on_demand` (the
    first download fetches, checks and validates them exactly as `mirror` does at once; then they are served from
    here, as the mirrored version). Its catalog side is a Version in state `listed` with the same object id
    (hub.federation.mirroring._record_listed), so it shows in the catalog's lists, search and pages."""

    object_id = models.URLField(max_length=500, unique=True)  # the AS2 id: the version's URL on its origin
    peer = models.ForeignKey(Peer, on_delete=models.CASCADE, related_name="remote_items")
    mode = models.CharField(max_length=10, choices=PeerMode.choices)
    state = models.CharField(max_length=10, choices=RemoteItemState.choices, default=RemoteItemState.LISTED)
    activity = models.JSONField()  # the signed Create it came in (what a fetch on demand acts on)
    sources = models.JSONField(default=dict, blank=True)  # sha256 -> [url]: other copies an Announce offered
    attestations = models.JSONField(default=list, blank=True)  # the relaying hubs' mirror attestations
    received_at = models.DateTimeField(default=timezone.now)
    requested_at = models.DateTimeField(null=True, blank=True)  # the first download (on_demand)

    class Meta:
        ordering = ["-received_at", "-pk"]

    def __str__(self) -> str:
        return f"{self.object_id} ({self.mode}, {self.state})"
