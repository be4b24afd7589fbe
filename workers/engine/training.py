"""Train a LoRA adapter on a hosted dataset's rows: PEFT on transformers, deterministic, checkpointed, resumable.

Pure engine code (no Django, Celery or hub): the hub's training task and `nomoat train --local` call the same
`train_adapter` on plain folders.

- Rows are read by `workers.engine.datasets` (the one home of row shapes) and formatted by
  `workers.engine.prompts.row_prompt`, the format the task suites evaluate: chat rows with the base's chat template
  (required here), instruction and multiple-choice rows as the prompt followed by the answer; text rows are learnt
  whole. Loss is only on the answer: prompt tokens are labelled -100.
- Deterministic: the same spec, seed, data, thread count and machine give the same adapter bytes
  (`torch.use_deterministic_algorithms`, a fixed thread count, batches drawn from a generator seeded per epoch).
- Checkpoints (LoRA weights, AdamW state, scheduler state, RNG state and the step, which fixes the data position)
  are written atomically every N steps or seconds; a run resumed from one ends with the same bytes as one that
  never stopped (tests/training/test_engine.py proves it on the tiny model).
- Checkpoints are safetensors plus JSON: nothing here is ever unpickled.
"""

from __future__ import annotations

import contextlib
import json
import math
import os
import shutil
import tempfile
import time
from collections.abc import Callable, Iterator, Mapping, Sequence
from dataclasses import asdict, dataclass, field
from importlib import metadata
from pathlib import Path
from typing import Any

from workers.engine.datasets import read_records, row_format
from workers.engine.errors import EngineInputError, quote
from workers.engine.prompts import has_chat_template, row_prompt

SCHEDULES = ("constant", "constant_with_warmup", "linear", "cosine")  # transformers.get_scheduler names
MAX_GRAD_NORM = 1.0
IGNORE_INDEX = -100  # the label transformers' loss skips
CHECKPOINT_PREFIX = "step-"
MAX_RANK, MAX_STEPS, MAX_EPOCHS, MAX_BATCH, MAX_SEQ_LEN = 256, 1_000_000, 100, 1024, 32768
LORA_KEYS = ("rank", "alpha", "dropout", "target_modules", "use_rslora")
SPEC_KEYS = ("lora", "steps", "epochs", "learning_rate", "schedule", "warmup_steps", "batch_size", "max_seq_len", "seed")


class TrainingCancelled(Exception):
    """The caller's `should_stop` said stop; nothing was written to the output folder."""


@dataclass(frozen=True)
class TrainingSpec:
    """What is trained, and how: every field changes the adapter, so all of them are hashed and carded."""

    rank: int = 8
    alpha: float = 16.0
    dropout: float = 0.0
    target_modules: tuple[str, ...] = ("q_proj", "v_proj")
    use_rslora: bool = False
    steps: int | None = None
    epochs: int | None = None
    learning_rate: float = 2e-4
    schedule: str = "linear"
    warmup_steps: int = 0
    batch_size: int = 8
    max_seq_len: int = 256
    seed: int = 0

    @classmethod
    def from_dict(cls, data: object) -> TrainingSpec:
        """Parse `{"lora": {...}, "steps": 200, ...}`; every refusal names its field (`lora.rank`)."""
        if not isinstance(data, Mapping):
            raise EngineInputError("a training spec must be a JSON object", field="spec")
        _no_unknown(data, SPEC_KEYS, "")
        lora = data.get("lora", {})
        if not isinstance(lora, Mapping):
            raise EngineInputError(f"must be an object with {', '.join(LORA_KEYS)}", field="lora")
        _no_unknown(lora, LORA_KEYS, "lora.")
        modules = lora.get("target_modules", list(cls.target_modules))
        if (not isinstance(modules, list) or not modules
                or not all(isinstance(m, str) and m.replace("_", "").replace(".", "").isalnum() for m in modules)):
            raise EngineInputError(f"must be a non-empty list of module names like \"q_proj\", got {quote(modules)}",
                                   field="lora.target_modules")
        steps, epochs = data.get("steps"), data.get("epochs")
        if (steps is None) == (epochs is None):
            raise EngineInputError("give exactly one of steps or epochs", field="steps")
        schedule = data.get("schedule", cls.schedule)
        if schedule not in SCHEDULES:
            raise EngineInputError(f"must be one of {', '.join(SCHEDULES)}, got {quote(schedule)}", field="schedule")
        use_rslora = lora.get("use_rslora", False)
        if not isinstance(use_rslora, bool):
            raise EngineInputError(f"must be true or false, got {quote(use_rslora)}", field="lora.use_rslora")
        spec = cls(
            rank=_int(lora.get("rank", cls.rank), "lora.rank", 1, MAX_RANK),
            alpha=_number(lora.get("alpha", cls.alpha), "lora.alpha", 0.0, 1e6, low_open=True),
            dropout=_number(lora.get("dropout", cls.dropout), "lora.dropout", 0.0, 0.99),
            target_modules=tuple(sorted(set(modules))),
            use_rslora=use_rslora,
            steps=None if steps is None else _int(steps, "steps", 1, MAX_STEPS),
            epochs=None if epochs is None else _int(epochs, "epochs", 1, MAX_EPOCHS),
            learning_rate=_number(data.get("learning_rate", cls.learning_rate), "learning_rate", 0.0, 1.0,
                                  low_open=True),
            schedule=schedule,
            warmup_steps=_int(data.get("warmup_steps", 0), "warmup_steps", 0, MAX_STEPS),
            batch_size=_int(data.get("batch_size", cls.batch_size), "batch_size", 1, MAX_BATCH),
            max_seq_len=_int(data.get("max_seq_len", cls.max_seq_len), "max_seq_len", 8, MAX_SEQ_LEN),
            seed=_int(data.get("seed", 0), "seed", 0, 2**32 - 1),
        )
        return spec

    def to_dict(self) -> dict[str, Any]:
        """The canonical form (what is hashed): every field, defaults filled in, modules sorted."""
        values = asdict(self)
        lora = {key: values.pop(key) for key in LORA_KEYS}
        lora["target_modules"] = list(lora["target_modules"])
        return {"lora": lora, **values}

    def total_steps(self, examples: int) -> int:
        return self.steps if self.steps is not None else self.epochs * math.ceil(examples / self.batch_size)


def _no_unknown(data: Mapping, allowed: Sequence[str], prefix: str) -> None:
    unknown = sorted(str(key) for key in data if key not in allowed)
    if unknown:
        raise EngineInputError(f"unknown field; expected {', '.join(allowed)}", field=f"{prefix}{unknown[0]}")


def _int(value: object, name: str, low: int, high: int) -> int:
    if isinstance(value, bool) or not isinstance(value, int) or not low <= value <= high:
        raise EngineInputError(f"must be a whole number from {low} to {high}, got {quote(value)}", field=name)
    return value


def _number(value: object, name: str, low: float, high: float, *, low_open: bool = False) -> float:
    if isinstance(value, bool) or not isinstance(value, int | float) or not math.isfinite(value) \
            or not (low < value if low_open else low <= value) or value > high:
        bound = f"above {low:g}" if low_open else f"from {low:g}"
        raise EngineInputError(f"must be a number {bound} to {high:g}, got {quote(value)}", field=name)
    return float(value)


@dataclass(frozen=True)
class Example:
    """One tokenized row: `labels` is IGNORE_INDEX on the prompt and on nothing else."""

    input_ids: tuple[int, ...]
    labels: tuple[int, ...]


@dataclass(frozen=True)
class Examples:
    items: list[Example]
    rows: int
    truncated: int  # rows cut at max_seq_len that kept some answer
    dropped: int  # rows whose prompt alone filled max_seq_len: nothing of the answer left to learn


def tokenize_rows(tokenizer: Any, files: Sequence[Path], *, max_seq_len: int) -> Examples:
    """Every row of the data files as an Example; a row the tokenizer cannot format is refused with its place."""
    items: list[Example] = []
    rows = truncated = dropped = 0
    for path in files:
        for record in read_records(path):
            where = {"file": path.name, "field": record.place}
            if record.error:
                raise EngineInputError(record.error, **where)
            shape, problem = row_format(record.value)
            if shape is None:
                raise EngineInputError(problem, **where)
            prompt_ids, answer_ids = _encode(tokenizer, record.value, shape, where)
            rows += 1
            ids, labels = prompt_ids + answer_ids, [IGNORE_INDEX] * len(prompt_ids) + answer_ids
            if len(ids) > max_seq_len:
                ids, labels = ids[:max_seq_len], labels[:max_seq_len]
                if all(label == IGNORE_INDEX for label in labels):
                    dropped += 1
                    continue
                truncated += 1
            items.append(Example(tuple(ids), tuple(labels)))
    if not items:
        raise EngineInputError(f"no row leaves any answer to learn within max_seq_len={max_seq_len} tokens "
                               f"({rows} rows read)", field="max_seq_len")
    return Examples(items, rows, truncated, dropped)


def _encode(tokenizer: Any, row: Mapping[str, Any], shape: str, where: dict[str, str]) -> tuple[list[int], list[int]]:
    """(prompt ids, answer ids) of one well-formed row, in the format the task suites evaluate (`row_prompt`)."""
    if shape == "chat" and not has_chat_template(tokenizer):
        raise EngineInputError("chat rows need the base model's chat template, and its tokenizer has none", **where)
    try:
        pair = row_prompt(row, tokenizer)
    except EngineInputError as exc:
        raise EngineInputError(str(exc), **where) from None
    eos = [tokenizer.eos_token_id] if tokenizer.eos_token_id is not None and not pair.ends_turn else []
    return _ids(tokenizer, pair.prompt), _ids(tokenizer, pair.response) + eos


def _ids(tokenizer: Any, text: str) -> list[int]:
    return list(tokenizer(text, add_special_tokens=False)["input_ids"]) if text else []


@dataclass(frozen=True)
class Progress:
    """What a running job reports after each step."""

    step: int
    total_steps: int
    epoch: int
    loss: float
    learning_rate: float
    tokens_per_second: float
    eta_seconds: float
    elapsed_seconds: float
    loss_history: list[tuple[int, float]]


@dataclass
class TrainingResult:
    out_dir: Path
    steps: int
    train_loss: float  # the mean loss of the last steps (up to 10)
    eval_loss: float | None
    seconds: float
    tokens: int
    resumed_from_step: int
    examples: int
    truncated: int
    dropped: int
    device: str
    threads: int
    loss_history: list[tuple[int, float]] = field(default_factory=list)
    versions: dict[str, str] = field(default_factory=dict)


def library_versions() -> dict[str, str]:
    """The libraries whose versions change a trained adapter's bytes (part of a job's hash); read from the installed
    packages' metadata, so a web process that hashes a spec never imports torch."""
    return {name: metadata.version(name) for name in ("torch", "transformers", "peft", "safetensors")}


def estimate_seconds(parameter_count: int, tokens: int, *, tokens_per_second: float | None = None) -> float:
    """A rough time for training `tokens` tokens: measured throughput when known, else a rule of thumb for a CPU
    (about 4 FLOPs per parameter and token for a LoRA step, at 20 GFLOP/s)."""
    rate = tokens_per_second or 20e9 / (4 * max(parameter_count, 1))
    return tokens / rate


@contextlib.contextmanager
def _deterministic(threads: int) -> Iterator[None]:
    """Deterministic kernels and a fixed thread count for the run, restored afterwards (a worker runs other tasks)."""
    import torch

    os.environ.setdefault("CUBLAS_WORKSPACE_CONFIG", ":4096:8")  # what deterministic cuBLAS needs
    before = torch.get_num_threads(), torch.are_deterministic_algorithms_enabled()
    torch.set_num_threads(threads)
    torch.use_deterministic_algorithms(True)
    try:
        yield
    finally:
        torch.set_num_threads(before[0])
        torch.use_deterministic_algorithms(before[1])


def train_adapter(
    base_dir: Path | str,
    train_files: Sequence[Path],
    out_dir: Path | str,
    spec: TrainingSpec,
    *,
    base_model_name: str,
    eval_files: Sequence[Path] = (),
    checkpoint_dir: Path | str | None = None,
    checkpoint_every_steps: int = 50,
    checkpoint_every_seconds: float = 300.0,
    on_progress: Callable[[Progress], None] | None = None,
    on_checkpoint: Callable[[int], None] | None = None,
    should_stop: Callable[[], bool] | None = None,
    threads: int = 1,
    device: str = "auto",
    card: Mapping[str, Any] | None = None,
) -> TrainingResult:
    """Train a LoRA on the rows of `train_files` and write a PEFT folder (adapter_config.json,
    adapter_model.safetensors, README.md) to `out_dir`, which appears whole or not at all.

    With `checkpoint_dir`, resumes from its last checkpoint of the same spec and writes new ones as it goes.
    `card` describes where the data came from for the README (`dataset`, `license`, extra front matter).
    """
    import torch
    from transformers import AutoTokenizer

    base_dir, out_dir = Path(base_dir), Path(out_dir)
    with _deterministic(threads):
        tokenizer = AutoTokenizer.from_pretrained(base_dir)
        data = tokenize_rows(tokenizer, train_files, max_seq_len=spec.max_seq_len)
        held_out = tokenize_rows(tokenizer, eval_files, max_seq_len=spec.max_seq_len) if eval_files else None
        run_device = ("cuda" if torch.cuda.is_available() else "cpu") if device == "auto" else device
        pad = tokenizer.pad_token_id if tokenizer.pad_token_id is not None else (tokenizer.eos_token_id or 0)
        trainer = _Run(base_dir, spec, data, pad, run_device, base_model_name)
        checkpoints = _Checkpoints(Path(checkpoint_dir), trainer.fingerprint) if checkpoint_dir else None
        resumed = checkpoints.load_latest(trainer) if checkpoints else 0
        trainer.loop(checkpoints, checkpoint_every_steps, checkpoint_every_seconds, on_progress, on_checkpoint,
                     should_stop)
        seconds = trainer.elapsed()  # training only: not the held-out pass below
        eval_loss = trainer.mean_loss(held_out.items) if held_out else None
        result = TrainingResult(
            out_dir=out_dir, steps=trainer.total, train_loss=trainer.recent_loss(), eval_loss=eval_loss,
            seconds=seconds, tokens=trainer.tokens, resumed_from_step=resumed, examples=len(data.items),
            truncated=data.truncated, dropped=data.dropped, device=run_device, threads=threads,
            loss_history=list(trainer.history), versions=library_versions(),
        )
        _write_output(trainer.model, out_dir, spec, result, base_model_name, dict(card or {}))
    return result


class _Run:
    """One training run's state: the PEFT model, AdamW, the schedule, the step and the loss history."""

    def __init__(self, base_dir: Path, spec: TrainingSpec, data: Examples, pad: int, device: str,
                 base_model_name: str) -> None:
        import torch
        from peft import LoraConfig, get_peft_model
        from transformers import AutoModelForCausalLM, get_scheduler

        self.spec, self.data, self.pad, self.device = spec, data, pad, device
        self.total = spec.total_steps(len(data.items))
        self.per_epoch = math.ceil(len(data.items) / spec.batch_size)
        torch.manual_seed(spec.seed)  # the LoRA A factors' initialisation
        base = AutoModelForCausalLM.from_pretrained(base_dir, dtype=torch.float32)
        present = {name.rsplit(".", 1)[-1] for name, _ in base.named_modules()}
        missing = [m for m in spec.target_modules if m not in present]
        if missing:
            raise EngineInputError(f"the base model has no module {', '.join(missing)}", field="lora.target_modules")
        config = LoraConfig(r=spec.rank, lora_alpha=spec.alpha, lora_dropout=spec.dropout,
                            target_modules=list(spec.target_modules), use_rslora=spec.use_rslora, bias="none",
                            task_type="CAUSAL_LM")
        self.model = get_peft_model(base, config).to(device)
        self.model.peft_config["default"].base_model_name_or_path = base_model_name
        self.named = [(name, p) for name, p in self.model.named_parameters() if p.requires_grad]
        self.optimizer = torch.optim.AdamW([p for _, p in self.named], lr=spec.learning_rate, weight_decay=0.0)
        self.scheduler = get_scheduler(spec.schedule, self.optimizer, num_warmup_steps=spec.warmup_steps,
                                       num_training_steps=self.total)
        self.step = 0
        self.tokens = 0
        self.history: list[tuple[int, float]] = []
        self.prior_seconds = 0.0  # spent before the checkpoint this run resumed from
        self.started = time.monotonic()
        self.fingerprint = json.dumps({"spec": spec.to_dict(), "examples": len(data.items),
                                       "data": _digest_examples(data.items), "base": base_model_name}, sort_keys=True)

    def elapsed(self) -> float:
        return self.prior_seconds + time.monotonic() - self.started

    def recent_loss(self) -> float:
        recent = [loss for _, loss in self.history[-10:]]
        return sum(recent) / len(recent) if recent else float("nan")

    def batch(self, step: int) -> list[Example]:
        """The batch of a step: epoch e's order is a permutation drawn from seed + e, so the step alone fixes the
        data position and a resumed run reads exactly what the uninterrupted one would have."""
        import torch

        epoch, index = divmod(step, self.per_epoch)
        order = torch.randperm(len(self.data.items), generator=torch.Generator().manual_seed(self.spec.seed + epoch))
        chosen = order[index * self.spec.batch_size:(index + 1) * self.spec.batch_size].tolist()
        return [self.data.items[i] for i in chosen]

    def tensors(self, examples: Sequence[Example]) -> dict[str, Any]:
        import torch

        width = max(len(e.input_ids) for e in examples)
        ids = [list(e.input_ids) + [self.pad] * (width - len(e.input_ids)) for e in examples]
        labels = [list(e.labels) + [IGNORE_INDEX] * (width - len(e.labels)) for e in examples]
        mask = [[1] * len(e.input_ids) + [0] * (width - len(e.input_ids)) for e in examples]
        return {key: torch.tensor(value, device=self.device)
                for key, value in (("input_ids", ids), ("attention_mask", mask), ("labels", labels))}

    def loop(self, checkpoints: _Checkpoints | None, every_steps: int, every_seconds: float,
             on_progress: Callable[[Progress], None] | None, on_checkpoint: Callable[[int], None] | None,
             should_stop: Callable[[], bool] | None) -> None:
        import torch

        self.model.train()
        session_tokens, session_start, session_first_step = 0, time.monotonic(), self.step
        last_saved = time.monotonic()
        while self.step < self.total:
            if should_stop is not None and should_stop():
                raise TrainingCancelled(f"stopped at step {self.step} of {self.total}")
            examples = self.batch(self.step)
            loss = self.model(**self.tensors(examples)).loss
            loss.backward()
            torch.nn.utils.clip_grad_norm_([p for _, p in self.named], MAX_GRAD_NORM)
            self.optimizer.step()
            self.scheduler.step()
            self.optimizer.zero_grad(set_to_none=True)
            self.step += 1
            tokens = sum(len(e.input_ids) for e in examples)
            self.tokens += tokens
            session_tokens += tokens
            self.history.append((self.step, round(float(loss.detach()), 6)))
            if on_progress is not None:
                session_seconds = max(time.monotonic() - session_start, 1e-9)
                rate = session_tokens / session_seconds
                per_step = session_seconds / (self.step - session_first_step)
                on_progress(Progress(
                    step=self.step, total_steps=self.total, epoch=(self.step - 1) // self.per_epoch,
                    loss=self.history[-1][1], learning_rate=self.scheduler.get_last_lr()[0], tokens_per_second=rate,
                    eta_seconds=per_step * (self.total - self.step), elapsed_seconds=self.elapsed(),
                    loss_history=self.history,
                ))
            due = self.step % every_steps == 0 or time.monotonic() - last_saved >= every_seconds
            if checkpoints is not None and due and self.step < self.total:
                checkpoints.save(self)
                last_saved = time.monotonic()
                if on_checkpoint is not None:
                    on_checkpoint(self.step)

    def mean_loss(self, items: Sequence[Example]) -> float:
        """Token-weighted mean loss of the answers of held-out examples."""
        import torch

        self.model.eval()
        total, counted = 0.0, 0
        with torch.no_grad():
            for start in range(0, len(items), self.spec.batch_size):
                chunk = items[start:start + self.spec.batch_size]
                batch = self.tensors(chunk)
                answer_tokens = int((batch["labels"][:, 1:] != IGNORE_INDEX).sum())
                total += float(self.model(**batch).loss) * answer_tokens
                counted += answer_tokens
        self.model.train()
        return round(total / counted, 6) if counted else float("nan")


def _digest_examples(items: Sequence[Example]) -> str:
    import hashlib

    digest = hashlib.sha256()
    for item in items:
        digest.update(json.dumps([item.input_ids, item.labels]).encode())
    return digest.hexdigest()


class _Checkpoints:
    """A folder of `step-NNNNNNNNN` checkpoints; each appears whole (staged, then renamed) and older ones go."""

    def __init__(self, folder: Path, fingerprint: str) -> None:
        self.folder = folder
        self.fingerprint = fingerprint

    def latest(self) -> Path | None:
        done = sorted(p for p in self.folder.glob(f"{CHECKPOINT_PREFIX}*") if (p / "state.json").is_file())
        return done[-1] if done else None

    def save(self, run: _Run) -> None:
        import torch
        from safetensors.torch import save_file

        self.folder.mkdir(parents=True, exist_ok=True)
        final = self.folder / f"{CHECKPOINT_PREFIX}{run.step:09d}"
        staging = Path(tempfile.mkdtemp(prefix=f".{final.name}.", dir=self.folder))
        optimizer = run.optimizer.state_dict()
        tensors = {f"state.{index}.{key}": value.detach().cpu().contiguous()
                   for index, state in optimizer["state"].items() for key, value in state.items()}
        tensors["rng.cpu"] = torch.get_rng_state()
        if run.device.startswith("cuda"):
            tensors["rng.cuda"] = torch.cuda.get_rng_state()
        save_file({name: p.detach().cpu().contiguous() for name, p in run.named}, str(staging / "adapter.safetensors"))
        save_file(tensors, str(staging / "optimizer.safetensors"))
        state = {"fingerprint": self.fingerprint, "step": run.step, "tokens": run.tokens, "history": run.history,
                 "seconds": run.elapsed(), "param_groups": optimizer["param_groups"],
                 "scheduler": run.scheduler.state_dict()}
        (staging / "state.json").write_text(json.dumps(state))
        for path in staging.iterdir():
            with open(path, "rb") as handle:
                os.fsync(handle.fileno())
        shutil.rmtree(final, ignore_errors=True)
        os.replace(staging, final)
        for older in self.folder.glob(f"{CHECKPOINT_PREFIX}*"):
            if older != final:
                shutil.rmtree(older, ignore_errors=True)
        for leftover in self.folder.glob(f".{CHECKPOINT_PREFIX}*"):
            if leftover != staging:
                shutil.rmtree(leftover, ignore_errors=True)

    def load_latest(self, run: _Run) -> int:
        """Restore the run from the last checkpoint of the same spec and data; returns its step (0: none)."""
        import torch
        from safetensors.torch import load_file

        latest = self.latest()
        if latest is None:
            return 0
        state = json.loads((latest / "state.json").read_text())
        if state.get("fingerprint") != self.fingerprint:
            return 0  # another spec's or dataset's: never mix them
        weights = load_file(str(latest / "adapter.safetensors"))
        with torch.no_grad():
            for name, param in run.named:
                param.copy_(weights[name])
        saved = load_file(str(latest / "optimizer.safetensors"))
        optimizer_state: dict[int, dict[str, Any]] = {}
        for key, value in saved.items():
            if key.startswith("state."):
                _, index, name = key.split(".", 2)
                optimizer_state.setdefault(int(index), {})[name] = value
        run.optimizer.load_state_dict({"state": optimizer_state, "param_groups": state["param_groups"]})
        run.scheduler.load_state_dict(state["scheduler"])
        torch.set_rng_state(saved["rng.cpu"])
        if "rng.cuda" in saved and run.device.startswith("cuda"):
            torch.cuda.set_rng_state(saved["rng.cuda"])
        run.step, run.tokens, run.prior_seconds = state["step"], state["tokens"], state["seconds"]
        run.history = [tuple(point) for point in state["history"]]
        return run.step


def _write_output(model: Any, out_dir: Path, spec: TrainingSpec, result: TrainingResult, base_model_name: str,
                  card: dict[str, Any]) -> None:
    """The PEFT folder and its card, staged beside `out_dir` and renamed into place."""
    out_dir.parent.mkdir(parents=True, exist_ok=True)
    staging = Path(tempfile.mkdtemp(prefix=f".{out_dir.name}.", dir=out_dir.parent))
    try:
        model.save_pretrained(staging, safe_serialization=True)
        (staging / "README.md").write_text(training_card(spec, result, base_model_name, card))
        shutil.rmtree(out_dir, ignore_errors=True)
        os.replace(staging, out_dir)
    except BaseException:
        shutil.rmtree(staging, ignore_errors=True)
        raise


def lineage_card(*, dataset: str, license: str, eval_split: str) -> dict[str, Any]:
    """The card fields that tie an adapter to the dataset version it was trained on ("owner/name@N"): `datasets`
    (the repository, which the hub links both ways) and, with a held-out split, `eval_dataset` + `eval_split`, so the
    hub's task evaluation scores that very version's held-out rows."""
    card: dict[str, Any] = {"dataset": dataset, "license": license, "datasets": [dataset.partition("@")[0]]}
    if eval_split:
        card |= {"eval_dataset": dataset, "eval_split": eval_split}
    return card


def training_card(spec: TrainingSpec, result: TrainingResult, base_model_name: str, card: Mapping[str, Any]) -> str:
    """A model card that says exactly how the adapter was made: dataset@version, base, every hyperparameter,
    the final train and eval loss, the time and the seed. (A reproduced run's adapter files are the same bytes;
    its card differs in the training time.)"""
    import yaml

    dataset = str(card.get("dataset", ""))
    front = {
        "base_model": base_model_name, "library_name": "peft", "tags": ["lora", "nomoat-trained"],
        **{key: value for key, value in card.items() if key != "dataset"},
        "training": {"dataset": dataset, "spec": spec.to_dict(), "steps": result.steps,
                     "train_loss": result.train_loss, "eval_loss": result.eval_loss, "examples": result.examples,
                     "truncated_rows": result.truncated, "dropped_rows": result.dropped,
                     "libraries": result.versions},
    }
    rows = [("dataset", dataset or "local files"), ("base model", base_model_name), ("LoRA rank", spec.rank),
            ("LoRA alpha", f"{spec.alpha:g}"), ("dropout", f"{spec.dropout:g}"),
            ("target modules", ", ".join(spec.target_modules)), ("rsLoRA", "yes" if spec.use_rslora else "no"),
            ("steps", f"{result.steps}" + (f" ({spec.epochs} epochs)" if spec.epochs else "")),
            ("learning rate", f"{spec.learning_rate:g} ({spec.schedule}, {spec.warmup_steps} warm-up steps)"),
            ("batch size", spec.batch_size), ("max sequence length", spec.max_seq_len), ("seed", spec.seed),
            ("training rows", f"{result.examples} ({result.truncated} truncated, {result.dropped} too long)"),
            ("final train loss", f"{result.train_loss:.4f}"),
            ("eval loss", "no eval split" if result.eval_loss is None else f"{result.eval_loss:.4f}"),
            ("training time", f"{result.seconds:.0f} s on {result.device}, {result.threads} threads")]
    table = "\n".join(f"| {name} | {value} |" for name, value in rows)
    title = f"LoRA adapter for {base_model_name}" + (f", trained on {dataset}" if dataset else "")
    return (f"---\n{yaml.safe_dump(front, sort_keys=True)}---\n\n# {title}\n\n"
            "Trained by nomoat's training engine (PEFT on transformers), loss on the answers only.\n\n"
            f"| setting | value |\n|---|---|\n{table}\n")
