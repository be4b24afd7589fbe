"""Where provenance hears of the work it signs: a version that passed validation, a stack whose artifact is stored.

Both receivers run in the worker that did the work, before anyone can download the result."""

from __future__ import annotations

from django.dispatch import receiver

from hub.catalog.models import Blob, Version
from hub.catalog.signals import version_passed_validation
from hub.provenance.models import OriginSignature
from hub.provenance.signing import stack_sign, version_countersign, version_sign
from hub.stacks.models import StackBuild
from hub.stacks.signals import stack_artifact_stored


@receiver(version_passed_validation, dispatch_uid="provenance.sign_version")
def sign_version(sender: type[Version], version: Version, **kwargs: object) -> None:
    kept = OriginSignature.objects.filter(version=version).first()
    if kept is not None:
        version_countersign(version=version, kept=kept)  # mirrored: the origin's signature stays, ours beside it
    else:
        version_sign(version=version)


@receiver(stack_artifact_stored, dispatch_uid="provenance.sign_stack")
def sign_stack(sender: type[StackBuild], build: StackBuild, files: dict[str, Blob], **kwargs: object) -> dict[str, Blob]:
    return stack_sign(build=build, files=files)
