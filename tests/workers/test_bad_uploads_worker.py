"""The whole bad-upload corpus through the real worker: each rejected for its reason, none crashes it,
and a good upload submitted among them is published with its files intact."""

from __future__ import annotations

import hashlib
from pathlib import Path

import pytest

from hub.accounts.models import Role
from hub.catalog.models import Version, VersionState
from hub.catalog.services import blob_put_file, repository_get_or_create, version_create
from tests.conftest import wait_until
from tests.engine.bad_uploads import BAD_UPLOADS, build_good_dataset
from workers.engine.archive import is_archive

pytestmark = pytest.mark.django_db(transaction=True)
SETTLED = {VersionState.REJECTED, VersionState.PENDING_REVIEW, VersionState.PUBLISHED}


def uploadable(source: Path) -> bool:
    """What a client sends as such: an archive, or a folder of regular files (links exist only inside archives).

    A lone file that is no archive is, to the hub, a folder of one unexpected file (tests/catalog covers it).
    """
    if source.is_file():
        return is_archive(source)
    return all(p.is_file() and not p.is_symlink() for p in source.rglob("*") if not p.is_dir())


def submit(owner, name: str, kind: str, source: Path, base_model) -> Version:
    files = [source] if source.is_file() else sorted(p for p in source.rglob("*") if p.is_file())
    root = source.parent if source.is_file() else source
    repo = repository_get_or_create(kind=kind, owner=owner, name=name, base_model=base_model)
    blobs = {str(p.relative_to(root)): blob_put_file(path=p) for p in files}
    return version_create(repository=repo, files=blobs, created_by=owner, base_model=base_model)


def test_every_bad_upload_is_rejected_by_the_worker_and_a_good_one_survives(
        celery_worker, make_user, tiny_base_model, make_adapter, tmp_path):
    alice = make_user("alice", role=Role.TRUSTED)
    good = {"adapter": make_adapter(), "dataset": build_good_dataset(tmp_path / "good-dataset")}
    submitted: list[tuple[Version, object]] = []
    # corpus items that need other limits than the hub's settings are covered by the engine's own test
    corpus = [bad for bad in BAD_UPLOADS if not bad.options]
    for index, bad in enumerate(corpus):
        scratch = tmp_path / f"bad-{index}"
        scratch.mkdir()
        source = bad.build(scratch, good[bad.kind])
        if not uploadable(source):
            continue
        # no base model chosen: the adapter's own config must name it (as in the engine's corpus test)
        submitted.append((submit(alice, f"bad-{index}", bad.kind, source, None), bad))
        if index == len(corpus) // 2:
            intact = submit(alice, "the-good-one", "adapter", good["adapter"], tiny_base_model)
    assert len(submitted) >= 60

    everything = [v.pk for v, _ in submitted] + [intact.pk]
    wait_until(lambda: Version.objects.filter(pk__in=everything, state__in=SETTLED).count() == len(everything),
               timeout=600, interval=1.0, what="the worker to settle every upload")
    assert celery_worker.proc.poll() is None, "the worker died:\n" + celery_worker.log()[-3000:]

    for version, bad in submitted:
        version.refresh_from_db()
        failures = [c for c in version.validation_report["checks"] if not c["passed"] and not c["skipped"]]
        assert version.state == VersionState.REJECTED, bad.name
        # The hub's own limits (settings) replace the engine's defaults, so a limit's number may differ.
        limit_numbers = bad.check == "archive" and any(ch.isdigit() for ch in bad.fragment)
        assert any(c["name"] == bad.check and (limit_numbers or bad.fragment in c["message"]) for c in failures), (
            bad.name, failures)

    intact.refresh_from_db()
    assert intact.state == VersionState.PUBLISHED, intact.state_reason
    stored = {f.path: f.blob.sha256 for f in intact.files.select_related("blob")}
    for path in good["adapter"].iterdir():
        assert stored[path.name] == hashlib.sha256(path.read_bytes()).hexdigest()
