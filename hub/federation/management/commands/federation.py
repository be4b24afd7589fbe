"""`manage.py federation follow URL | unfollow URL | peers | block URL | unblock URL | rotate-key [USERNAME]
[--kind rsa|ed25519] | keys [USERNAME] | revoke-key KEY_ID`."""

from __future__ import annotations

from django.core.management.base import BaseCommand, CommandError, CommandParser

from hub.core.errors import ServiceError
from hub.federation import actors, selectors, services
from hub.federation.keys import retired_keys
from hub.federation.models import KeyKind


class Command(BaseCommand):
    help = ("Follow or unfollow another hub (or one of its namespaces), list peers, block or unblock a hub, rotate, "
            "list or revoke an actor's keys.")

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("action", choices=("follow", "unfollow", "peers", "block", "unblock", "rotate-key", "keys",
                                               "revoke-key"))
        parser.add_argument("url", nargs="?", help="a hub's base URL, user@host:port, or an actor URL; for "
                                                   "rotate-key and keys, the username whose keys (default: the "
                                                   "hub's); for revoke-key, the id of a retired key (see keys)")
        parser.add_argument("--kind", choices=KeyKind.values, help="rotate-key: only this kind (default: both)")

    def handle(self, *args: object, action: str, url: str | None, kind: str | None = None, **options: object) -> None:
        if action in ("rotate-key", "keys"):
            user = None
            if url:
                user = actors.local_actor_user(url)
                if user is None:
                    raise CommandError(f"{action} {url}: expected the username of an active local user")
            if action == "rotate-key":
                services.actor_keys_rotate(user=user, kinds=(kind,) if kind else tuple(KeyKind.values))
                self.stdout.write(f"new keys for {actors.actor_url(user)}; its followers are sent them")
            self._keys(user)
            return
        if action != "peers" and not url:
            raise CommandError(f"{action} needs a URL: a hub's base URL, user@host:port, or an actor URL")
        try:
            if action == "follow":
                follow = services.follow_create(url=url, by=None)
                self.stdout.write(f"following {follow.actor_url}: {follow.state}")
            elif action == "unfollow":
                actor_url, _ = services.follow_target(url)
                follow = selectors.follows_all().filter(actor_url=actor_url).first()
                if follow is None:
                    raise CommandError(f"{url}: this hub does not follow {actor_url}")
                services.follow_delete(follow=follow)
                self.stdout.write(f"unfollowed {actor_url}")
            elif action == "revoke-key":
                retired = services.actor_key_revoke(key_id=url)
                self.stdout.write(f"revoked {url} ({retired.kind}): verifiers refuse what it signed")
                return
            elif action in ("block", "unblock"):
                peer = services.peer_block(url=url, blocked=action == "block")
                self.stdout.write(f"{peer.base_url}: {peer.state}")
        except ServiceError as exc:
            raise CommandError(exc.message) from None
        if action == "peers":
            for peer in selectors.peers_all():
                follows = ", ".join(f"{f.namespace or 'hub'} {f.state}" for f in peer.follows.all()) or "not followed"
                self.stdout.write(f"{peer.base_url}  {peer.state}  {peer.mode}  failures={peer.failures}  "
                                  f"last delivery {peer.last_delivery_at or 'never'}  follows: {follows}")

    def _keys(self, user) -> None:
        """Every key of an actor: id, kind, status (current, previous or revoked)."""
        self.stdout.write(f"{actors.key_id(user)}  rsa  current")
        self.stdout.write(f"{actors.proof_key_id(user)}  ed25519  current")
        for old in retired_keys(user):
            status = "revoked" if old.revoked_at else "previous"
            self.stdout.write(f"{actors.actor_url(user)}#{old.name}  {old.kind}  {status}")
