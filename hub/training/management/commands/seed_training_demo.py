"""Publish the hub's curated demo datasets, upload its shipped demo adapters and queue one demo training job
(idempotent; part of `seed_hub`)."""

from __future__ import annotations

from django.core.management.base import BaseCommand

from hub.accounts.models import User
from hub.catalog.models import BaseModel
from hub.training.demo import DEMO_ADAPTERS, DEMO_DATASETS, demo_adapter_name, demo_catalog_seed
from workers.engine.smollm2 import SMOLLM2_NAME


class Command(BaseCommand):
    help = ("Publish the curated demo datasets and upload the shipped demo adapters (as the demo user), and queue one "
            "SmolLM2 training job.")

    def add_arguments(self, parser) -> None:
        parser.add_argument("--owner", default="demo")
        parser.add_argument("--no-training", action="store_true", help="only the datasets (no SmolLM2 adapters or job)")

    def handle(self, *args, owner: str = "demo", no_training: bool = False, **options) -> None:
        user = User.objects.filter(username=owner).first()
        if user is None:
            self.stdout.write(f"no user {owner}: demo datasets not seeded")
            return
        base = None if no_training else BaseModel.objects.filter(name=SMOLLM2_NAME).first()
        job = demo_catalog_seed(owner=user, base=base)
        names = ", ".join(f"{owner}/{name}" for name in DEMO_DATASETS)
        adapters = ", ".join(f"{owner}/{demo_adapter_name(name)}" for name in DEMO_ADAPTERS) if job else ""
        trained = (f"; demo adapters: {adapters} (validated and evaluated in the background); training job {job.pk} "
                   f"({job.get_state_display().lower()}) → {job.into}") if job else ""
        self.stdout.write(self.style.SUCCESS(f"demo datasets: {names}{trained}"))
