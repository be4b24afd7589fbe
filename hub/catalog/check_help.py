"""A validation report as people read it: each engine check named in plain words, failures first, with the fix.

The engine (`workers.engine.checks`) says precisely what is wrong; this module adds what the check is for and what
to do about it, keyed by the check's name. A file that failed because it is not safetensors at all (a pickle
renamed `.safetensors`) does not also list every check that could not read it: those fold into the first failure.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from hub.core.formatting import readable_bytes

BYTE_COUNT = re.compile(r"\b(\d{4,}) bytes\b")  # "8589934592 bytes" in an engine message reads "8.59 GB"
SAVE_SAFE = "save with PEFT's model.save_pretrained(folder, safe_serialization=True) and upload that folder"
SHOWN_PROBLEMS = 4  # problems listed per failed check before "and N more"

# check name -> (what it checks, in words; what to do when it fails)
CHECK_HELP: dict[str, tuple[str, str]] = {
    "archive": ("The archive unpacks safely", "Upload a .zip or .tar.gz of the adapter folder itself, with the files "
                                              "at the top level and no links."),
    "files.required": ("The required files are there", f"An adapter needs adapter_config.json and "
                                                       f"adapter_model.safetensors: {SAVE_SAFE}."),
    "files.pickle": ("No pickle files", "This file is a PyTorch pickle, not safetensors, and pickles can run code: "
                                        f"{SAVE_SAFE}."),
    "files.unexpected": ("No unexpected files", "Remove the files listed, or upload only the adapter folder."),
    "files.size": ("Files are within the size limit", "Split the data, or lower the rank of the adapter."),
    "config.json": ("adapter_config.json is valid JSON", "Re-save the adapter with PEFT; a hand-edited config must "
                                                         "stay a JSON object."),
    "config.peft_type": ("It is a LoRA adapter", "The hub stacks LoRA adapters: train with peft.LoraConfig."),
    "config.rank": ("The rank r is usable", "Set r in adapter_config.json to the rank the weights were trained with."),
    "config.alpha": ("lora_alpha is usable", "Set lora_alpha to a positive number (PEFT's default is 8)."),
    "config.target_modules": ("target_modules names the adapted layers", "List the module names, e.g. "
                                                                        "[\"q_proj\", \"v_proj\"]."),
    "config.features": ("Only features the hub can stack", "Train without the options listed (e.g. DoRA), or "
                                                          "merge them into plain LoRA factors."),
    "config.base_model": ("The base model is one the hub has", "Choose the base model in the upload form, or set "
                                                               "base_model_name_or_path to one listed on the hub."),
    "weights.header": ("The weights are a readable safetensors file", f"The file is not safetensors: {SAVE_SAFE}."),
    "weights.names": ("Every tensor is a LoRA factor", "Upload only lora_A / lora_B weights (PEFT's "
                                                       "save_pretrained does this)."),
    "weights.pairs": ("Each module has both factors", "Every adapted module needs lora_A and lora_B: re-save the "
                                                      "adapter rather than editing the file."),
    "weights.dtype": ("Weights are floating point", "Save the adapter in float32, float16 or bfloat16."),
    "weights.finite": ("No NaN or infinite values", "Training diverged: lower the learning rate or use bf16, then "
                                                    "re-save."),
    "weights.modules": ("Every module exists in the base model", "The adapter was trained on another base model: "
                                                                 "choose the right one, or retrain."),
    "weights.shapes": ("Shapes match the base model", "The shapes fit a different base model: pick the base the "
                                                      "adapter was trained on."),
    "weights.rank": ("Ranks match the config", "Make r (and rank_pattern) in adapter_config.json match the "
                                               "weights."),
    "weights.targets": ("Adapted modules are in target_modules", "Add the modules listed to target_modules."),
    "card.front_matter": ("The card's front matter parses", "Start README.md with --- YAML --- (license, "
                                                            "base_model, tags, task)."),
    "card.license": ("The card names a license", "Add `license: apache-2.0` (or your license's SPDX id) to the "
                                                 "README.md front matter."),
    "card.fields": ("Tags, datasets and task are well-formed", "Use lists of short names: tags: [sql, chat]."),
    "card.base_model": ("The card and config agree on the base", "Make base_model in README.md match the adapter's "
                                                                 "base model."),
    "dataset.rows": ("Every row is well-formed", "Each line (a Parquet file: each row) must be one object with "
                                                 "prompt/response, messages, text or question/choices/answer fields."),
    "dataset.splits": ("Splits name the data files", "Map split names to files in the card, e.g. "
                                                     "splits: {train: train.jsonl}."),
}
STAGES = ("uploaded", "validating", "pending_review", "published")
STAGE_LABELS = {"uploaded": "Uploaded", "validating": "Checking", "pending_review": "In review",
                "published": "Published", "rejected": "Rejected", "unpublished": "Withdrawn"}


@dataclass
class CheckLine:
    name: str
    title: str
    status: str  # "failed", "passed" or "skipped"
    where: str
    problems: list[str]
    more: int
    fix: str
    folded: list[str] = field(default_factory=list)  # other checks that failed only because of this one


def checks_for_people(report: Mapping[str, Any]) -> list[CheckLine]:
    """The report's checks, failures first (then passes, then skipped), each with its title and fix."""
    lines: list[CheckLine] = []
    unreadable: dict[str, CheckLine] = {}  # file -> its "this is not safetensors" failure
    seen: set[tuple[str, str, str]] = set()
    for check in report.get("checks") or []:
        key = (check["name"], check.get("file", ""), check["message"])
        if key in seen:  # the same problem reported twice
            continue
        seen.add(key)
        status = "skipped" if check.get("skipped") else "passed" if check["passed"] else "failed"
        file = check.get("file", "")
        if status == "failed" and file in unreadable and check["name"] != "files.pickle":
            unreadable[file].folded.append(CHECK_HELP.get(check["name"], (check["name"], ""))[0])
            continue
        title, fix = CHECK_HELP.get(check["name"], (check["name"].replace(".", " ").replace("_", " ").capitalize(), ""))
        message = BYTE_COUNT.sub(lambda m: readable_bytes(int(m[1])), check["message"])
        problems = [p.strip() for p in message.split("; ") if p.strip()] or [message]
        more = 0
        if problems and problems[-1].startswith("and ") and problems[-1].endswith(" more"):
            more = int("".join(ch for ch in problems.pop() if ch.isdigit()) or 0)
        shown, hidden = problems[:SHOWN_PROBLEMS], problems[SHOWN_PROBLEMS:]
        line = CheckLine(check["name"], title, status, ": ".join(p for p in (file, check.get("field", "")) if p),
                         shown, more + len(hidden), fix if status == "failed" else "")
        if status == "failed" and check["name"] in ("files.pickle", "weights.header"):
            for name in _files_named(check["message"], file):
                unreadable.setdefault(name, line)
        lines.append(line)
    order = {"failed": 0, "passed": 1, "skipped": 2}
    return sorted(lines, key=lambda line: order[line.status])


def _files_named(message: str, file: str) -> list[str]:
    """The files a pickle/header failure is about: its `file`, or each "<name> is …" the message lists."""
    names = [file] if file else []
    names += [part.split(" is ", 1)[0].strip() for part in message.split("; ") if " is " in part]
    return names


def stages_of(state: str) -> list[tuple[str, str]]:
    """(label, "done" | "current" | "failed" | "todo") for the upload's way to publication."""
    if state in ("rejected", "unpublished"):
        reached = STAGES.index("validating") if state == "rejected" else STAGES.index("published")
        return [(STAGE_LABELS[s], "done") for s in STAGES[:reached]] + [(STAGE_LABELS[state], "failed")]
    current = STAGES.index(state) if state in STAGES else 0
    return [(STAGE_LABELS[s], "done" if i < current or state == "published" else "current" if i == current else "todo")
            for i, s in enumerate(STAGES)]
