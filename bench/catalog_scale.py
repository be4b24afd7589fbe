"""The catalog at scale: 100,000 adapters × 10 versions in PostgreSQL, and how fast lists, filters, sorts, search
and deep cursor pages answer on it.

    .venv/bin/python bench/catalog_scale.py --adapters 100000 --versions-per 10      # generate (once), then measure
    .venv/bin/python bench/catalog_scale.py --adapters 2000 --versions-per 3 --requests 20   # a quick look
    .venv/bin/python bench/catalog_scale.py --regenerate ...                          # drop the catalog, make it again

It uses a PostgreSQL database of its own (DATABASE_URL, by default postgres://postgres@127.0.0.1:5432/nomoat_h4scale:
created when missing, migrated by the script). Generation writes with COPY, foreign-key triggers and the catalog's
secondary indexes off while loading, then rebuilds the indexes and ANALYZEs: 2,000 owners, 5 base models, 60 tags,
--adapters repositories (names from a vocabulary, summaries, Pareto-distributed downloads with many zeros so that
sorts have ties, a score on most) and --versions-per versions each (cards with front matter and prose to search,
licenses, tasks, 1-3 tags, states: mostly published, some rejected, pending or unpublished, and a few repositories
with nothing public at all). A catalog already generated with the same sizes is reused.

Then it asks each case --requests times through Django's test client (the whole middleware stack, anonymous, the
anonymous read cache off) and prints p50 and p99 of the server time, the queries per request, and p50 as a multiple
of the baselines measured in the same process: a `SELECT 1` round trip and the favicon redirect. Bounded: one
process, loopback database only.
"""

from __future__ import annotations

import argparse
import hashlib
import io
import json
import os
import random
import statistics
import sys
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path
from urllib.parse import urlsplit

REPO_ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO_ROOT))
from bench.pages import measure  # noqa: E402  (the pages bench's timer and query count)

DEFAULT_DATABASE = "postgres://postgres@127.0.0.1:5432/nomoat_h4scale"
MARKER = "catalog-scale"  # the bench owners' bio: what says the catalog was generated, and its sizes

TOPICS = ("sql postgres python rust french german spanish japanese korean hindi arabic legal medical finance tweet "  # noqa: SIM905 - a vocabulary reads better as text
          "email haiku sarcasm pirate shakespeare json regex bash docker kubernetes recipe travel fitness yoga chess "
          "music lyrics movie review sentiment biology chemistry physics math history geography quiz tutor bedtime "
          "horror scifi fantasy romance noir detective poetry grammar resume contract support sales marketing "
          "weather astronomy gardening").split()
STYLES = "helper assistant writer coder tuned lora expert mini lite instruct chat bot coach solver tutor".split()  # noqa: SIM905
LICENSES = ("apache-2.0", "mit", "cc-by-4.0", "cc-by-sa-4.0", "openrail", "llama3", "gpl-3.0", "bsd-3-clause")
TASKS = ("text-generation", "text-to-sql", "summarization", "translation", "question-answering", "classification")
PROSE = ("trained on {n} curated examples of {t} written by volunteers", "works best with short prompts about {t}",
         "merges well with other {s} adapters at weight 0.5", "keeps the base model's tone while adding {t} skills",
         "evaluated on a held-out {t} set with exact match", "rank {r} on the attention projections only",
         "a community {s} for people who write about {t}", "tends to answer in lists when asked about {t}",
         "the second version fixes repetition on long {t} prompts", "data cleaned of duplicates and personal details")


def _rng_text(rng: random.Random, topic: str, style: str) -> str:
    sentences = [rng.choice(PROSE).format(n=rng.randint(200, 90000), t=rng.choice((topic, rng.choice(TOPICS))),
                                          s=style, r=rng.choice((4, 8, 16, 32))) for _ in range(rng.randint(3, 6))]
    return ". ".join(s.capitalize() for s in sentences) + "."


def _copy(cursor, table: str, columns: list[str], rows) -> int:
    """COPY rows (tuples of text, or None for NULL) into table, in text format, a few MB at a time."""
    count, buffer = 0, io.StringIO()
    with cursor.copy(f"COPY {table} ({', '.join(columns)}) FROM STDIN") as copy:
        for row in rows:
            buffer.write("\t".join("\\N" if v is None else str(v).replace("\\", "\\\\").replace("\t", " ")
                                   .replace("\n", "\\n") for v in row) + "\n")
            count += 1
            if buffer.tell() > 4 << 20:
                copy.write(buffer.getvalue())
                buffer = io.StringIO()
        copy.write(buffer.getvalue())
    return count


def _ts(moment: datetime) -> str:
    return moment.isoformat()


TABLES = ("catalog_repository", "catalog_version", "catalog_version_tags")


def generate(adapters: int, versions_per: int, seed: int = 1) -> None:
    from django.db import connection

    rng = random.Random(seed)
    now = datetime(2026, 12, 1, tzinfo=UTC)
    started = time.perf_counter()
    with connection.cursor() as wrapper:
        cursor = wrapper.cursor  # psycopg's own, for COPY
        cursor.execute("TRUNCATE catalog_version_tags, catalog_version, catalog_repository, catalog_tag, "
                       "catalog_basemodel, accounts_user RESTART IDENTITY CASCADE")
        # Secondary indexes are rebuilt once after the load (far cheaper than maintaining them row by row); the
        # primary keys and unique constraints stay. Foreign keys are not checked while loading: the rows are made so.
        cursor.execute("SELECT indexname, indexdef FROM pg_indexes WHERE tablename = ANY(%s) AND indexname NOT IN "
                       "(SELECT conname FROM pg_constraint)", [list(TABLES)])
        secondary = cursor.fetchall()
        for name, _ in secondary:
            cursor.execute(f'DROP INDEX "{name}"')
        cursor.execute("SET session_replication_role = replica")
        owners = 2000
        _copy(cursor, "accounts_user", ["id", "password", "is_superuser", "username", "first_name", "last_name",
                                        "email", "is_staff", "is_active", "date_joined", "role", "bio"],
              ((i + 1, "!", "f", f"{rng.choice(TOPICS)}fan{i}", "", "", "", "f", "t", _ts(now), "user",
                f"{MARKER} {adapters}x{versions_per}") for i in range(owners)))
        bases = ["HuggingFaceTB/SmolLM2-135M-Instruct", "meta-llama/Llama-3.2-1B", "Qwen/Qwen2.5-0.5B",
                 "mistralai/Mistral-7B-v0.3", "google/gemma-2-2b"]
        _copy(cursor, "catalog_basemodel", ["id", "name", "architecture", "parameter_count", "license", "description",
                                            "config", "module_shapes", "created_at"],
              ((i + 1, name, "llama", 135_000_000 * (i + 1), "apache-2.0", "", "{}", "{}", _ts(now))
               for i, name in enumerate(bases)))
        tags = sorted({*TOPICS[:52], *STYLES[:8]})
        _copy(cursor, "catalog_tag", ["id", "name"], ((i + 1, t) for i, t in enumerate(tags)))
        tag_rows: list[tuple[int, int]] = []

        def repositories():
            for i in range(adapters):
                topic, style = TOPICS[i % len(TOPICS)], STYLES[(i // len(TOPICS)) % len(STYLES)]
                created = now - timedelta(seconds=rng.randint(0, 730 * 86400))
                downloads = 0 if rng.random() < 0.3 else int(rng.paretovariate(1.1) * 10)
                score = "" if rng.random() < 0.25 else f"{rng.uniform(0.2, 0.95):.4f}"
                summary = f"A {style} for {topic}: " + rng.choice(PROSE).format(n=rng.randint(200, 9000), t=topic,
                                                                                 s=style, r=8)
                yield (i + 1, "adapter", i % owners + 1, f"{topic}-{style}-{i // owners}", rng.randint(1, len(bases)),
                       summary, downloads, score or None, created, created + timedelta(days=versions_per))

        def versions():
            version_id = 0
            for pk, _, owner, name, base, *_, created, _ in repo_rows:
                topic, style = name.split("-")[:2]
                hidden = rng.random()  # 3 %: nothing public (rejected), 2 %: only pending review
                for number in range(1, versions_per + 1):
                    version_id += 1
                    roll = rng.random()
                    state = ("rejected" if hidden < 0.03 else "pending_review" if hidden < 0.05 else
                             "rejected" if roll < 0.05 else "unpublished" if roll < 0.08 else
                             "pending_review" if roll < 0.10 else "published")
                    license_, task = LICENSES[(pk + number // 5) % len(LICENSES)], TASKS[pk % len(TASKS)]
                    chosen = sorted({topic, *rng.sample(tags, rng.randint(0, 2))} & set(tags)) or [style]
                    moment = created + timedelta(days=number - 1)
                    reason = ("the weights file is a pickle" if state == "rejected" else
                              "taken down after a report" if state == "unpublished" else "")
                    yield (version_id, pk, number, state, reason,
                           hashlib.sha1(f"{pk}:{number}".encode(), usedforsecurity=False).hexdigest(),
                           f"# {name}\n\n{_rng_text(rng, topic, style)}\n",
                           json.dumps({"license": license_, "task": task, "tags": chosen}), license_, task, base,
                           None, "{}", "{}", rng.randint(0, 50), owner, _ts(moment),
                           _ts(moment) if state in ("published", "unpublished") else None)
                    tag_rows.extend((version_id, tags.index(t) + 1) for t in chosen if t in tags)

        repo_rows = list(repositories())
        _copy(cursor, "catalog_repository", ["id", "kind", "owner_id", "name", "base_model_id", "summary", "downloads",
                                             "score", "created_at", "updated_at"],
              ((*row[:8], _ts(row[8]), _ts(row[9])) for row in repo_rows))
        made = _copy(cursor, "catalog_version", [
            "id", "repository_id", "number", "state", "state_reason", "commit_sha", "card_text", "card", "license",
            "task", "base_model_id", "lease_expires_at", "validation_report", "stats", "downloads", "created_by_id",
            "created_at", "published_at"], versions())
        tagged = _copy(cursor, "catalog_version_tags", ["version_id", "tag_id"], tag_rows)
        cursor.execute("SET session_replication_role = DEFAULT")
        for table, column in (("accounts_user", "id"), ("catalog_repository", "id"), ("catalog_version", "id"),
                              ("catalog_tag", "id"), ("catalog_basemodel", "id"), ("catalog_version_tags", "id")):
            cursor.execute(f"SELECT setval(pg_get_serial_sequence('{table}', '{column}'), "  # noqa: S608 - our own names
                           f"(SELECT coalesce(max({column}), 0) + 1 FROM {table}), false)")
        loaded = time.perf_counter()
        print(f"loaded {adapters} adapters, {made} versions, {tagged} version tags in {loaded - started:.0f} s",
              flush=True)
        for _, definition in secondary:
            cursor.execute(definition)
        # Statistics first: without them the refresh's subquery per repository plans as a BitmapAnd with the state
        # index (900,000 entries read for each of 100,000 repositories: it had not finished after 15 minutes).
        cursor.execute("ANALYZE")
    from hub.catalog.services import repository_search_refresh

    repository_search_refresh()  # the stored search documents, one UPDATE (as catalog migration 0007 backfills)
    with connection.cursor() as cursor:
        cursor.execute("VACUUM ANALYZE")
    print(f"indexes rebuilt and analyzed in {time.perf_counter() - loaded:.0f} s", flush=True)


def cases(sample: dict[str, str]) -> list[tuple[str, str]]:
    """(label, path): the API first, then the adapters page."""
    api = "/api/v1/adapters"
    return [
        ("API list (newest)", api),
        ("API filter tag", f"{api}?tag={sample['tag']}"),
        ("API filter license", f"{api}?license={sample['license']}"),
        ("API filter base", f"{api}?base_model={sample['base']}"),
        ("API tag + license + base", f"{api}?tag={sample['tag']}&license={sample['license']}&base_model={sample['base']}"),
        ("API sort downloads", f"{api}?ordering=downloads"),
        ("API sort newest", f"{api}?ordering=newest"),
        ("API sort score", f"{api}?ordering=score"),
        ("API search a word", f"{api}?search={sample['word']}"),
        ("API search a typo", f"{api}?search={sample['typo']}"),
        ("API search, by relevance", f"{api}?search={sample['word']}&ordering=relevance"),
        ("API deep page (newest)", sample["deep_newest"]),
        ("API deep page (downloads)", sample["deep_downloads"]),
        ("page /adapters/", "/adapters/"),
        ("page tag + popular", f"/adapters/?tag={sample['tag']}&ordering=downloads"),
        ("page search", f"/adapters/?search={sample['word']}"),
        ("page, page 200", "/adapters/?page=200"),
    ]


def deep_cursor(client, path: str, pages: int) -> str:
    """The `next` link after following `pages` pages (a real cursor, deep in the list)."""
    for _ in range(pages):
        body = client.get(path).json()
        if not body.get("next"):
            break
        parts = urlsplit(body["next"])
        path = f"{parts.path}?{parts.query}"
    return path


def select_one(requests: int) -> list[float]:
    from django.db import connection

    times = []
    with connection.cursor() as cursor:
        for _ in range(requests):
            started = time.perf_counter()
            cursor.execute("SELECT 1")
            cursor.fetchone()
            times.append((time.perf_counter() - started) * 1000)
    return times


def p99(times: list[float]) -> float:
    ordered = sorted(times)
    return ordered[min(len(ordered) - 1, int(len(ordered) * 0.99))]


def ensure_database(url: str) -> None:
    import psycopg

    parts = urlsplit(url)
    name = parts.path.lstrip("/")
    with psycopg.connect(url.replace(parts.path, "/postgres"), autocommit=True) as conn:
        if not conn.execute("SELECT 1 FROM pg_database WHERE datname = %s", [name]).fetchone():
            conn.execute(f'CREATE DATABASE "{name}"')


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--adapters", type=int, default=100_000)
    parser.add_argument("--versions-per", type=int, default=10)
    parser.add_argument("--requests", type=int, default=100, help="requests per case (default 100)")
    parser.add_argument("--regenerate", action="store_true", help="make the catalog again even if it exists")
    parser.add_argument("--only", default="", help="measure only cases whose label contains this text")
    parser.add_argument("--explain", action="store_true", help="print EXPLAIN ANALYZE of each case's slowest query")
    args = parser.parse_args()

    url = os.environ.setdefault("DATABASE_URL", DEFAULT_DATABASE)
    if not url.startswith("postgres"):
        raise SystemExit(f"DATABASE_URL is {url}: this bench needs PostgreSQL (postgres://…)")
    ensure_database(url)
    os.environ.update({"DJANGO_SETTINGS_MODULE": "hub.settings", "DEBUG": "false", "ANONYMOUS_CACHE_SECONDS": "0"})
    os.environ.setdefault("NOMOAT_DATA_DIR", str(REPO_ROOT / "var" / "catalog-scale"))
    import django

    django.setup()
    from django.core.management import call_command
    from django.db import connection
    from django.test import Client
    from django.test.utils import setup_test_environment

    from hub.accounts.models import User
    from hub.catalog.models import Repository

    setup_test_environment()  # the test client's own settings (ALLOWED_HOSTS); nothing else changes
    call_command("migrate", verbosity=0)
    marker = f"{MARKER} {args.adapters}x{args.versions_per}"
    if args.regenerate or not User.objects.filter(bio=marker).exists():
        generate(args.adapters, args.versions_per)
    else:
        print(f"reusing the catalog in {connection.settings_dict['NAME']} ({marker})", flush=True)
    with connection.cursor() as cursor:
        cursor.execute("SELECT tag.name FROM catalog_version_tags vt JOIN catalog_tag tag ON tag.id = vt.tag_id "
                       "GROUP BY tag.name ORDER BY count(*) DESC OFFSET 10 LIMIT 1")
        [tag] = cursor.fetchone()
    repo = Repository.objects.select_related("base_model").order_by("pk").first()
    client = Client()
    word = "chess"
    sample = {"tag": tag, "license": "mit", "base": repo.base_model.name, "word": word, "typo": "detectve",
              "deep_newest": deep_cursor(client, "/api/v1/adapters?page_size=100", 100),
              "deep_downloads": deep_cursor(client, "/api/v1/adapters?ordering=downloads&page_size=100", 100)}
    load = os.getloadavg()
    print(f"{Repository.objects.count()} repositories; load average {load[0]:.2f} {load[1]:.2f} {load[2]:.2f}; "
          f"{args.requests} requests a case", flush=True)
    rows = [("baseline: SELECT 1", "", select_one(args.requests), 1)]
    measure(client, "/favicon.ico", 1)
    rows.append(("baseline: favicon redirect", "/favicon.ico", *measure(client, "/favicon.ico", args.requests)))
    for label, path in cases(sample):
        if args.only and args.only not in label:
            continue
        measure(client, path, 1)  # warm: templates compiled, plans cached by the database
        rows.append((label, path, *measure(client, path, args.requests)))
        if args.explain:
            explain(client, path)
    base_db, base_http = (statistics.median(rows[i][2]) for i in (0, 1))
    print(f"\n{'case':30} {'p50 ms':>8} {'p99 ms':>8} {'queries':>8} {'×SELECT 1':>10} {'×favicon':>9}  path")
    for label, path, times, queries in rows:
        median = statistics.median(times)
        print(f"{label:30} {median:8.1f} {p99(times):8.1f} {queries:8d} {median / base_db:10.0f} "
              f"{median / base_http:9.1f}  {path[:90]}")
    load = os.getloadavg()
    print(f"load average after: {load[0]:.2f} {load[1]:.2f} {load[2]:.2f}")


def explain(client, path: str) -> None:
    """EXPLAIN ANALYZE of the slowest query a request runs (how the indexes were chosen)."""
    from django.db import connection
    from django.test.utils import CaptureQueriesContext

    with CaptureQueriesContext(connection) as captured:
        client.get(path)
    slowest = max(captured.captured_queries, key=lambda q: float(q["time"]))
    with connection.cursor() as cursor:
        cursor.execute("EXPLAIN (ANALYZE, BUFFERS) " + slowest["sql"])
        plan = "\n".join(row[0] for row in cursor.fetchall())
    print(f"--- {path}: {slowest['time']} s\n{slowest['sql'][:1500]}\n{plan}\n", flush=True)


if __name__ == "__main__":
    main()
