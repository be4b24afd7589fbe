"""The hub's own curated datasets and demo adapters, so that a fresh hub opens on real, measured work.

- Datasets: small, license-clean (generated or written by the nomoat project, CC0), each with a train and an eval
  split, in the instruction format the task suites score by exact match.
- Adapters: one SmolLM2 LoRA per dataset, made by the hub's own training engine (`manage.py build_demo_adapters`
  reproduces them from DEMO_ADAPTERS with fixed seeds) and shipped as small files under `demo_adapters/`. Training
  all three on a fresh 2-core machine would take far longer than a first `make run` should.
- `manage.py seed_hub` publishes the datasets, uploads the adapters as the demo user (a trusted uploader) through
  the normal path (validation, publication, evaluations on the queues), and queues one training job; once both
  members of DEMO_STACK are published, the demo stack is requested (`on_version_published`), and its build and
  evaluations give the stacking scores.
"""

from __future__ import annotations

import io
import json
import logging
import random
from collections.abc import Callable
from pathlib import Path
from typing import Any

from hub.accounts.models import User
from hub.catalog.models import BaseModel, RepoKind, Version, VersionState
from hub.catalog.services import (
    blob_put_file,
    blob_put_stream,
    repository_get_or_create,
    repository_set_summary,
    version_claim_for_validation,
    version_create,
    version_record_validation,
)
from hub.catalog.validation import validate_version_files
from hub.stacks.services import stack_request
from hub.training.models import TrainingJob
from hub.training.services import training_request

log = logging.getLogger(__name__)

Rows = list[dict[str, str]]

UNITS = [("km", "m", 1000), ("kg", "g", 1000), ("m", "cm", 100), ("hours", "minutes", 60), ("minutes", "seconds", 60),
         ("litres", "ml", 1000), ("feet", "inches", 12), ("yards", "feet", 3), ("days", "hours", 24), ("cm", "mm", 10)]

# Written for nomoat (CC0): everyday phrases with their usual French.
PHRASES = [
    ("Good morning", "Bonjour"), ("Good evening", "Bonsoir"), ("Good night", "Bonne nuit"), ("Thank you", "Merci"),
    ("Thank you very much", "Merci beaucoup"), ("Please", "S'il vous plaît"), ("You're welcome", "De rien"),
    ("Excuse me", "Excusez-moi"), ("I'm sorry", "Je suis désolé"), ("Yes", "Oui"), ("No", "Non"),
    ("Goodbye", "Au revoir"), ("See you soon", "À bientôt"), ("See you tomorrow", "À demain"),
    ("How are you?", "Comment allez-vous ?"), ("I am fine", "Je vais bien"), ("What is your name?",
    "Comment vous appelez-vous ?"), ("My name is Anna", "Je m'appelle Anna"), ("Nice to meet you", "Enchanté"),
    ("Where is the station?", "Où est la gare ?"), ("Where is the bathroom?", "Où sont les toilettes ?"),
    ("How much is it?", "Combien ça coûte ?"), ("I don't understand", "Je ne comprends pas"),
    ("Do you speak English?", "Parlez-vous anglais ?"), ("I speak a little French", "Je parle un peu français"),
    ("The bill, please", "L'addition, s'il vous plaît"), ("A coffee, please", "Un café, s'il vous plaît"),
    ("A glass of water", "Un verre d'eau"), ("I am hungry", "J'ai faim"), ("I am thirsty", "J'ai soif"),
    ("I am tired", "Je suis fatigué"), ("It is cold", "Il fait froid"), ("It is hot", "Il fait chaud"),
    ("It is raining", "Il pleut"), ("What time is it?", "Quelle heure est-il ?"), ("Today", "Aujourd'hui"),
    ("Tomorrow", "Demain"), ("Yesterday", "Hier"), ("The book", "Le livre"), ("The house", "La maison"),
    ("The car", "La voiture"), ("The cat", "Le chat"), ("The dog", "Le chien"), ("The city", "La ville"),
    ("The sea", "La mer"), ("The sun", "Le soleil"), ("The moon", "La lune"), ("The bread", "Le pain"),
    ("The cheese", "Le fromage"), ("The apple", "La pomme"), ("I love you", "Je t'aime"),
    ("Happy birthday", "Joyeux anniversaire"), ("Help!", "Au secours !"), ("Open", "Ouvert"), ("Closed", "Fermé"),
    ("Left", "À gauche"), ("Right", "À droite"), ("Straight ahead", "Tout droit"), ("I live in Paris",
    "J'habite à Paris"), ("I am a student", "Je suis étudiant"), ("We are friends", "Nous sommes amis"),
    ("The door is open", "La porte est ouverte"), ("The shop is closed", "Le magasin est fermé"),
    ("I would like a ticket", "Je voudrais un billet"), ("Where is the hotel?", "Où est l'hôtel ?"),
]

# Sentences composed of these nouns and frames (written for nomoat too): every word of a held-out one is in the train
# split, in other sentences, so its eval split measures what a small adapter can learn, not French the base lacks.
NOUNS = [("the book", "le livre"), ("the house", "la maison"), ("the car", "la voiture"), ("the cat", "le chat"),
         ("the dog", "le chien"), ("the city", "la ville"), ("the sea", "la mer"), ("the sun", "le soleil"),
         ("the bread", "le pain"), ("the cheese", "le fromage"), ("the apple", "la pomme"), ("the station", "la gare"),
         ("the hotel", "l'hôtel"), ("the door", "la porte"), ("the shop", "le magasin"), ("the ticket", "le billet")]
FRAMES = [("Where is {}?", "Où est {} ?"), ("I see {}", "Je vois {}"), ("I like {}", "J'aime {}"),
          ("{} is here", "{} est ici")]

TABLES = {"users": ("age", "country"), "orders": ("total", "status"), "products": ("price", "category")}


def unit_conversions() -> tuple[Rows, Rows]:
    rows = [{"prompt": f"Convert {n} {a} to {b}:", "response": f" {n * factor} {b}"}
            for a, b, factor in UNITS for n in range(1, 41)]
    random.Random(0).shuffle(rows)
    return rows[40:], rows[:40]


def english_french() -> tuple[Rows, Rows]:
    composed = [(_sentence(en, noun), _sentence(fr, nom)) for en, fr in FRAMES for noun, nom in NOUNS]
    written = {en for en, _ in PHRASES}
    pairs = PHRASES + [(en, fr) for en, fr in composed if en not in written]
    rows = [{"prompt": f"English: {en}\nFrench:", "response": f" {fr}"} for en, fr in pairs]
    random.Random(1).shuffle(rows)
    return rows[20:], rows[:20]


def _sentence(frame: str, words: str) -> str:
    text = frame.format(words)
    return text[0].upper() + text[1:]


def text_to_sql() -> tuple[Rows, Rows]:
    rows = []
    for table, (number, text) in TABLES.items():
        for value in range(5, 100, 5):
            rows.append({"prompt": f"Question: How many {table} have {number} above {value}?\nSQL:",
                         "response": f" SELECT COUNT(*) FROM {table} WHERE {number} > {value};"})  # noqa: S608 - text, never run
            rows.append({"prompt": f"Question: List the {table} with {number} below {value}.\nSQL:",
                         "response": f" SELECT * FROM {table} WHERE {number} < {value};"})  # noqa: S608 - text, never run
        for word in ("active", "new", "gold", "open"):
            rows.append({"prompt": f"Question: Show the {text} of {table} where {text} is not {word}.\nSQL:",
                         "response": f" SELECT {text} FROM {table} WHERE {text} <> '{word}';"})  # noqa: S608 - text, never run
    random.Random(2).shuffle(rows)
    return rows[30:], rows[:30]


DEMO_DATASETS: dict[str, tuple[str, Callable[[], tuple[Rows, Rows]]]] = {
    "unit-conversions": ("Unit conversions (km to m, hours to minutes, …): a number and two units, the converted "
                         "number.", unit_conversions),
    "english-french": ("Everyday English phrases and their French, and short sentences composed of a few of their "
                       "words, written for nomoat.", english_french),
    "text-to-sql": ("Questions about three small tables and the SQL that answers them.", text_to_sql),
}
# The adapters shipped under DEMO_ADAPTERS_DIR/<dataset>/, trained by `manage.py build_demo_adapters` on SmolLM2:
# rank 4 keeps each file small (under 1 MB on q and v, 3 MB with the MLP; float32), rank 1 smaller still; a rebuild
# takes minutes on two quiet cores. A new entry here is built with `build_demo_adapters --only <dataset>`.
DEMO_ADAPTERS_DIR = Path(__file__).resolve().parent / "demo_adapters"
DEMO_ADAPTER_FILES = ("adapter_config.json", "adapter_model.safetensors", "README.md")
DEMO_TAG = "nomoat-demo"
DEMO_OWNER = "demo"  # the shipped cards name this user's datasets (their lineage and eval split)
DEMO_ADAPTERS: dict[str, dict[str, Any]] = {
    "text-to-sql": {"lora": {"rank": 4, "alpha": 8, "dropout": 0.0, "target_modules": ["q_proj", "v_proj"]},
                    "steps": 40, "learning_rate": 3e-3, "batch_size": 2, "max_seq_len": 48, "seed": 0},
    # Arithmetic on numbers needs more than a template: the MLP too, and five epochs (24 steps on q and v alone kept
    # only two thirds of its gain in the demo stack). Its rows are 16 tokens at most.
    "unit-conversions": {"lora": {"rank": 4, "alpha": 8, "dropout": 0.0,
                                  "target_modules": ["down_proj", "q_proj", "up_proj", "v_proj"]},
                         "steps": 240, "learning_rate": 2e-3, "schedule": "linear", "warmup_steps": 10,
                         "batch_size": 8, "max_seq_len": 16, "seed": 0},
    # Rank 1 on q and v (246 kB) keeps the three adapters under 4 MiB; ten epochs (five gave 2 of 20). On the written
    # phrases alone (held-out words the base does not know in French), neither the base nor two specs like this one
    # got one of 10 right: the composed sentences are what it learns. Its rows are 23 tokens at most.
    "english-french": {"lora": {"rank": 1, "alpha": 2, "dropout": 0.0, "target_modules": ["q_proj", "v_proj"]},
                       "steps": 140, "learning_rate": 3e-3, "schedule": "linear", "warmup_steps": 5,
                       "batch_size": 8, "max_seq_len": 24, "seed": 0},
}
# The demo stack: two shipped adapters summed exactly into one adapter (cheap to build and to evaluate).
DEMO_STACK_MEMBERS = (("unit-conversions", 1.0), ("text-to-sql", 1.0))
DEMO_STACK_METHOD = {"name": "cat", "params": {}}
DEMO_STACK_OUTPUT = {"type": "adapter"}
# The one adapter trained in the background on a fresh hub (SmolLM2 on 2 cores: a few minutes): a rank-8 variant of
# the shipped unit-conversions adapter, so that task's leaderboard compares two adapters.
DEMO_TRAINING = {"dataset": "unit-conversions", "into": "unit-conversions-r8",
                 "lora": {"rank": 8, "alpha": 16, "dropout": 0.0, "target_modules": ["q_proj", "v_proj"]},
                 "steps": 120, "learning_rate": 1e-3, "batch_size": 8, "max_seq_len": 48, "seed": 0}


def demo_adapter_name(dataset: str) -> str:
    return f"{dataset}-lora"


def demo_dataset_ref(owner: str, dataset: str) -> str:
    """The dataset version a shipped adapter was trained on: the first (and only) one the seeding publishes."""
    return f"{owner}/{dataset}@1"


def demo_dataset_files(name: str) -> dict[str, bytes]:
    """The files of a curated dataset, byte for byte as seeded (the shipped adapters' manifest records their sha256)."""
    summary, make = DEMO_DATASETS[name]
    train, held_out = make()
    return {"README.md": _card(name, summary), "train.jsonl": _jsonl(train), "eval.jsonl": _jsonl(held_out)}


def _jsonl(rows: Rows) -> bytes:
    return "".join(json.dumps(row, ensure_ascii=False) + "\n" for row in rows).encode()


def _card(name: str, summary: str) -> bytes:
    return (f"---\nlicense: cc0-1.0\ntask: text-generation\ntags: [demo, nomoat-curated]\n---\n\n# {name}\n\n"
            f"{summary}\n\nMade by the nomoat project and dedicated to the public domain (CC0). Splits: `train` and "
            "`eval` (held out).\n").encode()


def demo_dataset_publish(*, owner: User, name: str) -> Version:
    """Publish one curated dataset through the upload path, validated here and now (a few hundred rows: instant), so
    that a training job can be queued on it before any worker runs. Idempotent: an existing version is returned."""
    existing = Version.objects.filter(repository__owner=owner, repository__name=name,
                                      repository__kind=RepoKind.DATASET).order_by("-number").first()
    if existing is not None:
        return existing
    summary = DEMO_DATASETS[name][0]
    files = demo_dataset_files(name)
    repository = repository_get_or_create(kind=RepoKind.DATASET, owner=owner, name=name)
    repository_set_summary(repository=repository, summary=summary)
    blobs = {path: blob_put_stream(stream=io.BytesIO(data)) for path, data in files.items()}
    version = version_create(repository=repository, files=blobs, created_by=owner)
    claimed = version_claim_for_validation(version_id=version.pk, lease_seconds=60)
    if claimed is not None:  # the queued validation task will find nothing left to do
        report, stored = validate_version_files(claimed)
        version_record_validation(version=claimed, report=report.to_dict(), files=stored)
    version.refresh_from_db()
    return version


def demo_adapters_seed(*, owner: User, base: BaseModel) -> list[Version]:
    """Upload each shipped adapter as `owner/<dataset>-lora` through the normal upload path: validation is queued on
    commit, and a trusted uploader's version that passes is published, then evaluated. Idempotent: a repository that
    already has a version is left alone (returned as it is). Only for DEMO_OWNER, whose datasets the cards name."""
    versions: list[Version] = []
    if owner.username != DEMO_OWNER:
        log.warning("demo adapters are seeded only as %s (their cards name %s's datasets)", DEMO_OWNER, DEMO_OWNER)
        return versions
    for dataset in DEMO_ADAPTERS:
        folder = DEMO_ADAPTERS_DIR / dataset
        name = demo_adapter_name(dataset)
        existing = Version.objects.filter(repository__owner=owner, repository__name=name,
                                          repository__kind=RepoKind.ADAPTER).order_by("-number").first()
        if existing is not None:
            versions.append(existing)
            continue
        if not all((folder / path).is_file() for path in DEMO_ADAPTER_FILES):
            log.warning("demo adapter %s is not built (%s); run manage.py build_demo_adapters", dataset, folder)
            continue
        blobs = {path: blob_put_file(path=folder / path) for path in DEMO_ADAPTER_FILES}
        repository = repository_get_or_create(kind=RepoKind.ADAPTER, owner=owner, name=name, base_model=base)
        repository_set_summary(repository=repository,
                               summary=f"SmolLM2 LoRA trained by the hub on {owner.username}/{dataset}")
        versions.append(version_create(repository=repository, files=blobs, created_by=owner, base_model=base))
    return versions


def demo_stack_recipe(*, owner: str, base: str) -> dict[str, Any]:
    return {"base_model": base, "method": DEMO_STACK_METHOD, "output": DEMO_STACK_OUTPUT,
            "adapters": [{"adapter": f"{owner}/{demo_adapter_name(dataset)}", "weight": weight}
                         for dataset, weight in DEMO_STACK_MEMBERS]}


def on_version_published(sender: type, version: Version, **kwargs: object) -> None:
    """A demo stack member was published: once all members are (each with a published version tagged DEMO_TAG),
    request the demo stack as their owner. An identical recipe shares its build, so a later publication or a second
    seeding requests nothing new. A failure is logged, never raised into the publication."""
    try:
        _demo_stack_request(version)
    except Exception:
        log.exception("could not request the demo stack after %s was published", version)


def _demo_stack_request(version: Version) -> None:
    members = {demo_adapter_name(dataset) for dataset, _ in DEMO_STACK_MEMBERS}
    repository = version.repository
    if (repository.kind != RepoKind.ADAPTER or repository.name not in members or version.base_model_id is None
            or DEMO_TAG not in (version.card.get("tags") or [])):
        return
    published = set(Version.objects.filter(repository__owner=repository.owner_id, repository__name__in=members,
                                           repository__kind=RepoKind.ADAPTER, state=VersionState.PUBLISHED,
                                           base_model=version.base_model_id, tags__name=DEMO_TAG)
                    .values_list("repository__name", flat=True))
    if published != members:
        return
    owner = User.objects.get(pk=repository.owner_id)
    build, _ = stack_request(user=owner, request=demo_stack_recipe(owner=owner.username, base=version.base_model.name))
    log.info("demo stack %s requested (%s)", build.recipe_hash[:12], build.state)


def demo_catalog_seed(*, owner: User, base: BaseModel | None) -> TrainingJob | None:
    """The curated datasets, the shipped demo adapters (uploaded; validated and evaluated by the workers), and one
    training job on SmolLM2 (queued; a worker trains it in the background). Running it again reuses everything:
    the same request shares the same job."""
    versions = {name: demo_dataset_publish(owner=owner, name=name) for name in DEMO_DATASETS}
    target = versions[DEMO_TRAINING["dataset"]]
    if base is None or target.state != VersionState.PUBLISHED:
        return None
    demo_adapters_seed(owner=owner, base=base)
    request = {**DEMO_TRAINING, "base_model": base.name, "dataset": str(target),
               "into": f"{owner.username}/{DEMO_TRAINING['into']}"}
    job, _ = training_request(user=owner, request=request)
    return job
