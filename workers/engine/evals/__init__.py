"""Automatic evaluations: versioned suites, model backends, and pure scoring.

A worker runs, for example:

    suite = builtin_suite("general-perplexity")            # or task_suite("task:<slug>", rows)
    backend = TransformersBackend(base_dir, adapters=[(adapter_dir, 1.0)])   # or GGUFBackend(path)
    result = run_suite(suite, backend, seed=0)              # JSON-safe dict with per-item records
    retention(result, cached_base_result)                   # general ability kept by the adapter

Nothing here imports Django; model libraries are imported only when a backend is built.
"""

from workers.engine.evals.backends import Backend, TransformersBackend, library_versions, model_input
from workers.engine.evals.corpus import GENERAL_DOC_KEYS, Document, pydoc_documents
from workers.engine.evals.gguf import GGUFBackend
from workers.engine.evals.perplexity import (
    GENERAL_PERPLEXITY_ID,
    PerplexitySuite,
    general_perplexity_suite,
    perplexity_suite,
    rolling_windows,
)
from workers.engine.evals.runner import RESULT_SCHEMA, Suite, builtin_suite, json_safe, run_suite
from workers.engine.evals.scoring import (
    NORMALIZATIONS,
    bits_per_byte,
    mean_stderr,
    normalize,
    retention,
    stacking_score,
    stacking_summary,
    weighted_perplexity,
)
from workers.engine.evals.tasks import GenerationSuite, MultipleChoiceSuite, encode_pair, task_suite

__all__ = [
    "GENERAL_DOC_KEYS",
    "GENERAL_PERPLEXITY_ID",
    "NORMALIZATIONS",
    "RESULT_SCHEMA",
    "Backend",
    "Document",
    "GGUFBackend",
    "GenerationSuite",
    "MultipleChoiceSuite",
    "PerplexitySuite",
    "Suite",
    "TransformersBackend",
    "bits_per_byte",
    "builtin_suite",
    "encode_pair",
    "general_perplexity_suite",
    "json_safe",
    "library_versions",
    "mean_stderr",
    "model_input",
    "normalize",
    "perplexity_suite",
    "pydoc_documents",
    "retention",
    "rolling_windows",
    "run_suite",
    "stacking_score",
    "stacking_summary",
    "task_suite",
    "weighted_perplexity",
]
