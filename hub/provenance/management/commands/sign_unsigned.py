"""`manage.py sign_unsigned`: give model.sig and attestations to published versions and ready stacks made before
the hub signed them (versions first, so stacks signed after carry their adapters' bundles)."""

from __future__ import annotations

from django.core.management.base import BaseCommand
from django.db import transaction

from hub.provenance.signing import stack_add_signature, unsigned, version_sign


class Command(BaseCommand):
    help = "Sign published versions and ready stacks that have no model.sig yet."

    def handle(self, *args: object, **options: object) -> None:
        versions, _ = unsigned()
        for version in versions:
            with transaction.atomic():
                version_sign(version=version)
            self.stdout.write(f"signed {version}")
        _, stacks = unsigned()
        for build in stacks:
            stack_add_signature(build=build)
            self.stdout.write(f"signed {build}")
        self.stdout.write(f"{len(versions)} versions and {len(stacks)} stacks signed")
