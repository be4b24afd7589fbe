"""`manage.py seed_blobs`: seed the most requested blobs over BitTorrent until stopped (see hub/provenance/seeding.py)."""

from __future__ import annotations

import time

from django.core.management.base import BaseCommand, CommandParser

from hub.provenance.seeding import Seeder


class Command(BaseCommand):
    help = "Seed the most downloaded public files over BitTorrent (libtorrent) until stopped."

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("--top", type=int, default=50, help="how many blobs to seed (default 50)")
        parser.add_argument("--listen", default="0.0.0.0:6881", help="libtorrent listen_interfaces (default 0.0.0.0:6881)")
        parser.add_argument("--refresh", type=float, default=600, help="seconds between re-ranking (default 600)")
        parser.add_argument("--dht", action="store_true", help="join the public DHT (off by default)")

    def handle(self, *args: object, top: int, listen: str, refresh: float, dht: bool, **options: object) -> None:
        seeder = Seeder(listen=listen, dht=dht)
        while True:
            seeded = seeder.refresh(top)
            self.stdout.write(f"seeding {len(seeded)} blobs on port {seeder.port}")
            time.sleep(refresh)
