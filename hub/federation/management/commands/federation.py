"""`manage.py federation follow URL | unfollow URL | peers | block URL | unblock URL | rotate-key [USERNAME]`."""

from __future__ import annotations

from django.core.management.base import BaseCommand, CommandError, CommandParser

from hub.core.errors import ServiceError
from hub.federation import actors, selectors, services
from hub.federation.keys import actor_key_rotate


class Command(BaseCommand):
    help = ("Follow or unfollow another hub (or one of its namespaces), list peers, block or unblock a hub, rotate "
            "an actor's keys.")

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("action", choices=("follow", "unfollow", "peers", "block", "unblock", "rotate-key"))
        parser.add_argument("url", nargs="?", help="a hub's base URL, user@host:port, or an actor URL; for "
                                                   "rotate-key, the username whose keys to replace (default: the hub's)")

    def handle(self, *args: object, action: str, url: str | None, **options: object) -> None:
        if action == "rotate-key":
            user = None
            if url:
                user = actors.local_actor_user(url)
                if user is None:
                    raise CommandError(f"rotate-key {url}: expected the username of an active local user")
            actor_key_rotate(user)
            self.stdout.write(f"new keys for {actors.actor_url(user)}; peers fetch them at the next signature check")
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
