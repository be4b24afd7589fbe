"""`manage.py signing_key [show|rotate|revoke KEY_ID]`: the hub's signing keys (see hub/provenance/keys.py)."""

from __future__ import annotations

from django.core.management.base import BaseCommand, CommandError, CommandParser

from hub.core.errors import ServiceError
from hub.provenance.keys import key_revoke, key_rotate, public_keys


class Command(BaseCommand):
    help = "Show, rotate or revoke the keys the hub signs model.sig and attestations with."

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("action", choices=("show", "rotate", "revoke"), nargs="?", default="show")
        parser.add_argument("key_id", nargs="?", help="for revoke: the id of a retired key (see show)")

    def handle(self, *args: object, action: str, key_id: str | None, **options: object) -> None:
        try:
            if action == "rotate":
                self.stdout.write(f"signing with new key {key_rotate()}; the old one stays listed as previous")
            elif action == "revoke":
                if not key_id:
                    raise CommandError("revoke needs the id of a retired key (manage.py signing_key show)")
                self.stdout.write(f"revoked {key_revoke(key_id).key_id}: verifiers refuse what it signed")
        except ServiceError as exc:
            raise CommandError(exc.message) from None
        for key in public_keys():
            self.stdout.write(f"{key.key_id}  {key.status}")
