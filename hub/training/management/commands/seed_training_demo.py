"""Publish the hub's curated demo datasets and queue one demo training job (idempotent; part of `seed_hub`)."""

from __future__ import annotations

from django.core.management.base import BaseCommand

from hub.accounts.models import User
from hub.catalog.models import BaseModel
from hub.training.demo import DEMO_DATASETS, demo_catalog_seed
from workers.engine.smollm2 import SMOLLM2_NAME


class Command(BaseCommand):
    help = "Publish the curated demo datasets (as the demo user) and queue one SmolLM2 training job on them."

    def add_arguments(self, parser) -> None:
        parser.add_argument("--owner", default="demo")
        parser.add_argument("--no-training", action="store_true", help="only the datasets")

    def handle(self, *args, owner: str = "demo", no_training: bool = False, **options) -> None:
        user = User.objects.filter(username=owner).first()
        if user is None:
            self.stdout.write(f"no user {owner}: demo datasets not seeded")
            return
        base = None if no_training else BaseModel.objects.filter(name=SMOLLM2_NAME).first()
        job = demo_catalog_seed(owner=user, base=base)
        names = ", ".join(f"{owner}/{name}" for name in DEMO_DATASETS)
        trained = f"; training job {job.pk} ({job.get_state_display().lower()}) → {job.into}" if job else ""
        self.stdout.write(self.style.SUCCESS(f"demo datasets: {names}{trained}"))
