"""The hub's own curated datasets, so that a fresh hub opens on real work: small, license-clean (generated or written
by the nomoat project, CC0), each with a train and an eval split, in the instruction format the task suites score
by exact match. `manage.py seed_hub` publishes them through the normal upload path and queues one training job.
"""

from __future__ import annotations

import io
import json
import random
from collections.abc import Callable

from hub.accounts.models import User
from hub.catalog.models import BaseModel, RepoKind, Repository, Version, VersionState
from hub.catalog.services import (
    blob_put_stream,
    repository_get_or_create,
    version_claim_for_validation,
    version_create,
    version_record_validation,
)
from hub.catalog.validation import validate_version_files
from hub.training.models import TrainingJob
from hub.training.services import training_request

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

TABLES = {"users": ("age", "country"), "orders": ("total", "status"), "products": ("price", "category")}


def unit_conversions() -> tuple[Rows, Rows]:
    rows = [{"prompt": f"Convert {n} {a} to {b}:", "response": f" {n * factor} {b}"}
            for a, b, factor in UNITS for n in range(1, 41)]
    random.Random(0).shuffle(rows)
    return rows[40:], rows[:40]


def english_french() -> tuple[Rows, Rows]:
    rows = [{"prompt": f"English: {en}\nFrench:", "response": f" {fr}"} for en, fr in PHRASES]
    random.Random(1).shuffle(rows)
    return rows[10:], rows[:10]


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
    "english-french": ("Everyday English phrases and their French, written for nomoat.", english_french),
    "text-to-sql": ("Questions about three small tables and the SQL that answers them.", text_to_sql),
}
# The one adapter trained in the background on a fresh hub (SmolLM2 on 2 cores: a few minutes).
DEMO_TRAINING = {"dataset": "unit-conversions", "into": "unit-conversions-lora",
                 "lora": {"rank": 8, "alpha": 16, "dropout": 0.0, "target_modules": ["q_proj", "v_proj"]},
                 "steps": 120, "learning_rate": 1e-3, "batch_size": 8, "max_seq_len": 48, "seed": 0}


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
    summary, make = DEMO_DATASETS[name]
    train, held_out = make()
    files = {"README.md": _card(name, summary), "train.jsonl": _jsonl(train), "eval.jsonl": _jsonl(held_out)}
    repository = repository_get_or_create(kind=RepoKind.DATASET, owner=owner, name=name)
    Repository.objects.filter(pk=repository.pk).update(summary=summary[:300])
    blobs = {path: blob_put_stream(stream=io.BytesIO(data)) for path, data in files.items()}
    version = version_create(repository=repository, files=blobs, created_by=owner)
    claimed = version_claim_for_validation(version_id=version.pk, lease_seconds=60)
    if claimed is not None:  # the queued validation task will find nothing left to do
        report, stored = validate_version_files(claimed)
        version_record_validation(version=claimed, report=report.to_dict(), files=stored)
    version.refresh_from_db()
    return version


def demo_catalog_seed(*, owner: User, base: BaseModel | None) -> TrainingJob | None:
    """The curated datasets, and one training job on SmolLM2 (queued; a worker trains it in the background).
    Running it again reuses everything: the same request shares the same job."""
    versions = {name: demo_dataset_publish(owner=owner, name=name) for name in DEMO_DATASETS}
    target = versions[DEMO_TRAINING["dataset"]]
    if base is None or target.state != VersionState.PUBLISHED:
        return None
    request = {**DEMO_TRAINING, "base_model": base.name, "dataset": str(target),
               "into": f"{owner.username}/{DEMO_TRAINING['into']}"}
    job, _ = training_request(user=owner, request=request)
    return job
