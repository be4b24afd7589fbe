"""Server time per page on a demo-sized catalog, with each page's query count.

    .venv/bin/python bench/pages.py                              # 200 adapters × 3 versions, 15 requests a page
    .venv/bin/python bench/pages.py --adapters 10 --requests 3   # a quick look
    DATABASE_URL=postgres://postgres@127.0.0.1:5432/nomoat_bench .venv/bin/python bench/pages.py

It creates a database of its own (Django's test database beside DATABASE_URL's, `test_<name>`, dropped at the
end) and a fresh data dir, seeds --adapters published adapters of --versions versions each (cards with tags,
tasks and licenses, a config and weights per version), a dataset, and finished eval runs for every adapter's
latest version and the base model, recorded through the evals services as a worker records them (no worker
runs: the scores are made up, their shape is the engine's). Then it asks each page --requests times through
Django's test client (the whole middleware stack, no network, no anonymous read cache) and prints the median
and the slowest server time per page, its queries, and its median as a multiple of the baseline measured in the
same process: the favicon redirect, the cheapest thing the same stack answers. On a shared machine only the
ratios are comparable; the lead runs it on a quiet one. Bounded: one process, loopback database only.
"""

from __future__ import annotations

import argparse
import io
import os
import shutil
import statistics
import sys
import tempfile
import time
from pathlib import Path

REPO_ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO_ROOT))

# (label, path, signed in as the owner); the first is the baseline. {a} is an adapter `owner/name`, {n} its newest
# version, {d} the dataset.
PAGES = [
    ("baseline: favicon redirect", "/favicon.ico", False),
    ("home", "/", False),
    ("adapters", "/adapters/", False),
    ("adapters, tag + popular", "/adapters/?tag=sql&ordering=downloads", False),
    ("adapters, search", "/adapters/?search=helper", False),
    ("adapter", "/adapters/{a}", False),
    ("adapter version", "/adapters/{a}/v/1", False),
    ("version diff", "/adapters/{a}/diff/1..{n}", False),
    ("file (config)", "/adapters/{a}/v/{n}/files/adapter_config.json", False),
    ("upload status (owner)", "/adapters/{a}/v/{n}/status", True),
    ("eval progress fragment", "/adapters/{a}/v/{n}/evals", False),
    ("dataset", "/datasets/{d}", False),
    ("base model", "/models/nomoat/tiny-llama", False),
    ("user profile", "/users/{owner}", False),
    ("leaderboards", "/leaderboards/", False),
    ("leaderboard", "/leaderboards/nomoat/tiny-llama", False),
    ("leaderboard, filtered", "/leaderboards/nomoat/tiny-llama?kind=adapter&q=helper-1", False),
    ("leaderboard, all rows", "/leaderboards/nomoat/tiny-llama?rows=all", False),  # its "show all" link
    ("stacks", "/stacks/", False),
]


def _result(run, value: float) -> dict:
    """A finished result in the engine's shape (`run_suite`'s dict) for `run`."""
    return {"suite": {"id": run.suite, "version": run.suite_version}, "seed": 0, "settings": {}, "model": {},
            "versions": {}, "records": [], "timing": {"seconds": 1.0},
            "metrics": {"bits_per_byte": {"value": value, "stderr": 0.01, "higher_is_better": False},
                        "byte_perplexity": {"value": 2 ** value, "stderr": 0.1, "higher_is_better": False},
                        "word_perplexity": {"value": 4 ** value, "stderr": 0.2, "higher_is_better": False}}}


def seed(adapters: int, versions: int) -> dict[str, str]:
    from django.core.management import call_command

    from hub.accounts.services import user_create
    from hub.catalog.models import BaseModel, Version, VersionState
    from hub.catalog.services import blob_put_stream, repository_get_or_create, version_create
    from hub.catalog.signals import version_uploaded
    from hub.evals.models import EvalRun, RunState
    from hub.evals.services import eval_run_claim, eval_run_record_result, evals_schedule_version
    from hub.evals.signals import eval_run_queued

    call_command("seed_hub", skip_smollm2=True, no_users=True, verbosity=0)
    # No worker runs here: nothing is enqueued; the versions are published and their runs recorded by this process.
    version_uploaded.disconnect(dispatch_uid="catalog.enqueue_validation")
    eval_run_queued.disconnect(dispatch_uid="evals.enqueue_run")
    base = BaseModel.objects.get(name="nomoat/tiny-llama")
    owners = [user_create(username=f"bench{i}", password=None) for i in range(10)]
    licenses, tasks = ("apache-2.0", "mit", "cc-by-4.0"), ("text-generation", "text-to-sql", "summarization")

    def publish(owner, kind: str, name: str, files: dict[str, bytes]) -> Version:
        repo = repository_get_or_create(kind=kind, owner=owner, name=name, base_model=base if kind == "adapter" else None)
        blobs = {path: blob_put_stream(stream=io.BytesIO(data)) for path, data in files.items()}
        version = version_create(repository=repo, files=blobs, created_by=owner,
                                 base_model=base if kind == "adapter" else None)
        Version.objects.filter(pk=version.pk).update(state=VersionState.PUBLISHED)
        version.refresh_from_db()
        return version

    for i in range(adapters):
        for number in range(1, versions + 1):
            card = (f"---\nlicense: {licenses[i % 3]}\nbase_model: {base.name}\ntags: [sql, bench{i % 7}]\n"
                    f"task: {tasks[i % 3]}\n---\n\n# helper {i}\n\nA benchmark adapter, version {number}.\n"
                    + "".join(f"\n- change {k} of version {number}" for k in range(number)))
            config = (f'{{"peft_type": "LORA", "r": {4 * number}, "lora_alpha": 8, '
                      f'"target_modules": ["q_proj", "v_proj"], "base_model_name_or_path": "{base.name}"}}')
            version = publish(owners[i % len(owners)], "adapter", f"helper-{i}", {
                "README.md": card.encode(), "adapter_config.json": config.encode(),
                "adapter_model.safetensors": f"weights {i}.{number}".encode() * 64})
        for run in evals_schedule_version(version=version):
            claimed = eval_run_claim(run_id=run.pk, lease_seconds=60)
            if claimed is not None:
                eval_run_record_result(run=claimed, result=_result(claimed, 1.0 + (i % 50) / 100))
    publish(owners[0], "dataset", "sql-pairs", {"README.md": b"---\nlicense: cc-by-4.0\n---\n\n# Pairs\n",
                                                "train.jsonl": b'{"prompt": "q?", "response": "a."}\n' * 50})
    finished = EvalRun.objects.filter(state=RunState.FINISHED).count()
    print(f"seeded {adapters} adapters × {versions} versions, a dataset, {finished} finished eval runs", flush=True)
    return {"a": f"{owners[0].username}/helper-0", "n": str(versions), "d": f"{owners[0].username}/sql-pairs",
            "owner": owners[0].username}


def measure(client, path: str, requests: int) -> tuple[list[float], int]:
    from django.db import connection
    from django.test.utils import CaptureQueriesContext

    times, queries = [], 0
    for _ in range(requests):
        with CaptureQueriesContext(connection) as captured:
            started = time.perf_counter()
            response = client.get(path)
            times.append((time.perf_counter() - started) * 1000)
        if response.status_code not in (200, 301, 302):
            raise SystemExit(f"{path} answered {response.status_code}: {response.content[:300]!r}")
        queries = len(captured.captured_queries)
    return times, queries


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--adapters", type=int, default=200, help="published adapters to seed (default 200)")
    parser.add_argument("--versions", type=int, default=3, help="versions of each adapter (default 3)")
    parser.add_argument("--requests", type=int, default=15, help="requests per page; the median counts (default 15)")
    parser.add_argument("--only", default="", help="measure only pages whose label contains this text")
    args = parser.parse_args()

    data_dir = Path(tempfile.mkdtemp(prefix="nomoat-bench-pages-"))
    (data_dir / "static").mkdir()  # WhiteNoise's root (nothing here is a static file request)
    os.environ.update({"DJANGO_SETTINGS_MODULE": "hub.settings", "NOMOAT_DATA_DIR": str(data_dir), "DEBUG": "false",
                       "ANONYMOUS_CACHE_SECONDS": "0",
                       "NOMOAT_MODEL_CACHE": os.environ.get("NOMOAT_MODEL_CACHE", str(REPO_ROOT / ".cache" / "models"))})
    import django

    django.setup()
    from django.db import connection
    from django.test import Client
    from django.test.utils import setup_test_environment

    setup_test_environment()
    old_name = connection.settings_dict["NAME"]
    connection.creation.create_test_db(verbosity=0, autoclobber=True, serialize=False)
    try:
        names = seed(args.adapters, args.versions)
        if connection.vendor == "postgresql":
            # Planner statistics, as autovacuum gathers them within a minute on a running hub: on never-analyzed
            # tables PostgreSQL guesses one row each and picks nested loops that cost 100-200 ms a page here.
            with connection.cursor() as cursor:
                cursor.execute("ANALYZE")
        from hub.accounts.models import User

        anonymous, owner = Client(), Client()
        owner.force_login(User.objects.get(username=names["owner"]))
        rows = []
        for label, template, signed_in in PAGES:
            if args.only and args.only not in label and not label.startswith("baseline"):
                continue
            path = template.format(**names)
            client = owner if signed_in else anonymous
            measure(client, path, 1)  # warm: templates compiled, caches of the process filled
            times, queries = measure(client, path, args.requests)
            rows.append((label, path, statistics.median(times), max(times), queries))
        baseline = rows[0][2]
        print(f"{'page':30} {'median ms':>10} {'max ms':>8} {'queries':>8} {'× baseline':>11}  path")
        for label, path, median, slowest, queries in rows:
            print(f"{label:30} {median:10.1f} {slowest:8.1f} {queries:8d} {median / baseline:11.1f}  {path}")
    finally:
        connection.creation.destroy_test_db(old_name, verbosity=0)
        shutil.rmtree(data_dir, ignore_errors=True)


if __name__ == "__main__":
    main()
