"""The hub's pure engine: safetensors I/O, validation, stacking, GGUF export, evaluation.

Nothing in this package imports Django, so every piece runs on plain files from a shell,
a test or a profiler. Bump ENGINE_VERSION whenever an output of the engine would change for
the same inputs: it is part of every stack recipe hash.
"""

import os

ENGINE_VERSION = "1"

# No network at run time: transformers, peft and huggingface_hub must never reach a model hub
# from inside the engine (PEFT, for one, probes the hub for the base model on save).
os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")
os.environ.setdefault("HF_HUB_DISABLE_TELEMETRY", "1")
