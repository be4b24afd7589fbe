"""The OpenAPI schema tells the truth: schemathesis calls every documented operation of a live hub with generated
valid and invalid input and checks each answer against the schema (status code, content type, headers, body), that
nothing answers a 5xx, that invalid input is refused and that authentication is not ignored."""

from __future__ import annotations

import io
import json
import subprocess
import sys
from datetime import timedelta
from pathlib import Path

import pytest
from django.db import transaction
from django.utils import timezone

from hub.accounts.models import Role, TokenScope, User
from hub.accounts.services import api_token_create
from hub.catalog.models import BaseModel, VersionState
from hub.catalog.services import blob_put_stream
from hub.catalog.uploads import upload_session_create
from hub.evals.models import EvalRun, RunState
from hub.evals.services import eval_run_ensure
from hub.evals.subjects import adapter_subject, base_subjects, stack_subjects
from hub.evals.suites import general_suite_ref
from hub.moderation.models import Takedown
from hub.moderation.services.reports import report_create, reports_resolve
from hub.moderation.services.review import review_item_open
from hub.stacks.models import BuildState, StackAdapter, StackBuild, StackFile
from hub.stacks.services import stack_recipe_resolve

pytestmark = [pytest.mark.schemathesis, pytest.mark.django_db(transaction=True)]

SCHEMATHESIS = Path(sys.executable).parent / "schemathesis"
# Operations only moderators may call are called with a moderator's token, all others with an uploader's.
MODERATED = "^(GET|POST|DELETE) /api/v1/(moderation/|reports|evals/runs/)"

CONFIG = """\
headers = {{ Authorization = "Bearer {uploader_token}" }}

{dictionaries}

# Path parameters are drawn from these real names and ids half of the time, so operations on existing objects
# answer with their bodies (checked against the schema) and not only with 404s.
[parameters]
{bindings}

[[operations]]
include-name-regex = "{moderated}"
headers = {{ Authorization = "Bearer {moderator_token}" }}

# Every check schemathesis has runs (its default), but for these operations a request can be valid by the schema and
# still be refused with a 400 or 413, for what no schema can say: whether the uploaded files are a valid archive of
# safe names, whether a recipe names adapters on this hub, whether a chunk starts at the offset the upload is at,
# whether a sha256 is the content's, whether a training request names a dataset and modules the hub has (or a
# job has not ended yet), whether the user's upload quota has room, and the rules that tie a moderator's
# decision to its reason (a rejection needs a reason code, "other" and a request for changes need a note).
[[operations]]
include-name-regex = "^(POST /api/v1/(adapters|datasets)/.*/versions|POST /api/v1/stacks|POST /api/v1/trainings.*|POST /api/v1/uploads.*|PUT /api/v1/uploads/.*|POST /api/v1/moderation/items/.*)$"
checks.positive_data_acceptance.enabled = false

# A Range past the end of the file is well-formed and answered 416, as HTTP says.
[[operations]]
include-name-regex = "^GET .*/files/[{{]path[}}]$"
checks.positive_data_acceptance.expected-statuses = ["2xx", "3xx", "401", "403", "404", "409", "416", "429"]
"""


def seed(make_user, make_version, base: BaseModel) -> tuple[User, User, dict[str, list]]:
    """An uploader and a moderator; published and unpublished items of every kind, a ready stack, finished eval
    runs, an upload session, a review item, a report and a takedown. Returns the values of each path parameter."""
    alice, bob, mod = make_user("alice"), make_user("bob"), make_user("mod", role=Role.MODERATOR)
    adapter = make_version(alice, "sql-helper", base_model=base, summary="SQL")
    draft = make_version(alice, "draft", base_model=base, state=VersionState.PENDING_REVIEW)
    make_version(alice, "prose", kind="dataset", files={
        "README.md": b"---\nlicense: cc0-1.0\n---\n# prose\n", "train.jsonl": b'{"text": "a line"}\n' * 20})
    reported, taken = make_version(bob, "poet", base_model=base), make_version(bob, "spam", base_model=base)

    item = review_item_open(version=draft)
    report = report_create(reporter=alice, kind="adapter", target_id=reported.pk, reason="spam", comment="an ad")
    report_create(reporter=alice, kind="adapter", target_id=taken.pk, reason="malware", comment="bad")
    reports_resolve(kind="adapter", target_id=taken.pk, moderator=mod, resolution="unpublish", reason="malware")

    recipe, _, members, _ = stack_recipe_resolve(request={"base_model": base.name,
                                                       "adapters": [{"adapter": "alice/sql-helper", "weight": 0.5}]})
    now = timezone.now()
    stack = StackBuild.objects.create(
        recipe_hash=recipe.hash, recipe=recipe.to_dict(), request={"base_model": base.name}, base_model=base,
        method=recipe.method.name, output=recipe.output.type, state=BuildState.READY, progress=1.0,
        progress_message="ready", manifest={"files": ["config.json", "model.safetensors"]}, requested_by=alice,
        attempts=1, started_at=now - timedelta(seconds=5), finished_at=now,
    )
    StackAdapter.objects.bulk_create([StackAdapter(build=stack, version=v, position=i, weight=w)
                                      for i, (v, w) in enumerate(members)])
    for path, data in {"config.json": b'{"model_type": "llama"}', "model.safetensors": b"merged weights" * 100}.items():
        StackFile.objects.create(build=stack, path=path, blob=blob_put_stream(stream=io.BytesIO(data)))

    # Finished before the commit that would enqueue them: the worker finds nothing to claim.
    with transaction.atomic():
        runs = [eval_run_ensure(suite=general_suite_ref(), subject=subject)
                for subject in [base_subjects(base)[0], adapter_subject(adapter), stack_subjects(stack)[0]]]
        for i, run in enumerate(runs):
            metrics = {name: {"value": value + i / 10, "stderr": 0.01, "higher_is_better": False}
                       for name, value in [("bits_per_byte", 1.0), ("byte_perplexity", 2.0), ("word_perplexity", 9.0)]}
            EvalRun.objects.filter(pk=run.pk).update(state=RunState.FINISHED, metrics=metrics, seed=0, seconds=1.0,
                                                     attempts=1, started_at=now, finished_at=now)
    session = upload_session_create(owner=alice, filename="big.safetensors", size=1000)
    return alice, mod, {
        "owner": ["alice", "bob", "nomoat"], "username": ["alice", "bob"],
        "name": ["sql-helper", "draft", "prose", "poet", "tiny-llama"], "number": [1, 2],
        "path": ["adapter_model.safetensors", "README.md", "train.jsonl", "config.json", "model.safetensors",
                 *(f.path for f in base.files.all())],
        "recipe_hash": [stack.recipe_hash], "run_id": [run.pk for run in runs], "session_id": [str(session.pk)],
        "item_id": [item.pk], "report_id": [report.pk], "takedown_id": [Takedown.objects.get().pk],
    }


def test_the_api_answers_as_its_schema_says(live_server, celery_worker, make_user, make_version, tiny_base_model,
                                            tmp_path):
    # The worker runs what the calls enqueue (validating uploads, evaluating approved versions and re-runs), and is
    # idle before the test database is flushed.
    alice, mod, values = seed(make_user, make_version, tiny_base_model)
    config = tmp_path / "schemathesis.toml"
    config.write_text(CONFIG.format(
        uploader_token=api_token_create(user=alice, name="schemathesis", scope=TokenScope.WRITE).raw,
        moderator_token=api_token_create(user=mod, name="schemathesis", scope=TokenScope.WRITE).raw,
        moderated=MODERATED,
        dictionaries="\n".join(f"[dictionaries.{name}]\nvalues = {json.dumps(entries)}"
                               for name, entries in values.items()),
        bindings="\n".join(f'"path.{name}" = {{ dictionary = "{name}", probability = 0.5 }}' for name in values),
    ))
    command = [
        str(SCHEMATHESIS), "--config-file", str(config), "run", f"{live_server.url}/api/v1/schema/",
        "--max-examples", "15", "--seed", "20240601", "--workers", "1",
        "--generation-database", "none", "--request-timeout", "30", "--no-color",
        # The hub refuses NUL characters anywhere (PostgreSQL text cannot hold them; tests/test_hostile_input.py),
        # which a schema of plain strings cannot say.
        "--generation-allow-x00", "false",
        # Revoking the token the run authenticates with would turn every later call into a 401; revocation is
        # tested in tests/accounts.
        "--exclude-name", "DELETE /api/v1/auth/tokens/{token_id}",
    ]
    result = subprocess.run(command, cwd=tmp_path, capture_output=True, text=True, timeout=600)
    print(result.stdout, result.stderr, sep="\n")  # the whole report, which pytest shows when the test fails
    assert result.returncode == 0, f"schemathesis found problems (its report is above):\n{result.stdout[-3000:]}"
