"""A corpus of bad uploads, each paired with the check that must catch it and a fragment of its message.

Every builder takes a scratch folder and a good upload folder of its kind (a tiny-factory adapter, or
`build_good_dataset`), derives one bad upload from it (a folder or an archive) and returns its path.
Nothing here depends on pytest or Django, so the hub's own tests can push the same corpus through
the upload pages and the worker.
"""

from __future__ import annotations

import gzip
import io
import json
import pickle
import shutil
import stat
import struct
import tarfile
import zipfile
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
from safetensors.numpy import load_file, save_file

from workers.engine.archive import ArchiveLimits
from workers.engine.shapes import module_shapes, weight_files
from workers.engine.tiny import TINY_BASE_NAME, write_card
from workers.engine.validation import ADAPTER_CONFIG, ADAPTER_WEIGHTS, CARD

Q0 = "base_model.model.model.layers.0.self_attn.q_proj"


@dataclass(frozen=True)
class BadUpload:
    name: str
    kind: str  # "adapter" or "dataset"
    build: Callable[[Path, Path], Path]  # (scratch folder, good upload folder) -> the bad upload
    check: str  # the check that must fail
    fragment: str  # part of that check's message
    options: dict[str, Any] = field(default_factory=dict)  # extra keyword arguments for validate_upload


def tiny_base_models(base_dir: Path) -> dict[str, dict[str, dict[str, int]]]:
    """The hub's base models as validation sees them: the tiny base's name and its module shapes."""
    return {TINY_BASE_NAME: module_shapes(weight_files(base_dir))}


def build_good_dataset(tmp: Path) -> Path:
    """A valid dataset: instruction JSONL, chat JSONL, a text CSV and a card."""
    folder = tmp / "dataset"
    folder.mkdir(parents=True)
    write_jsonl(folder / "train.jsonl", [{"prompt": f"What is {i} + {i}?", "response": str(2 * i)} for i in range(12)])
    write_jsonl(folder / "eval.jsonl", [
        {"messages": [{"role": "system", "content": "Be brief."}, {"role": "user", "content": f"Say {i}."},
                      {"role": "assistant", "content": str(i)}]} for i in range(4)
    ])
    (folder / "test.csv").write_text('text,source\n"A line, with a comma.",a\nAnother line.,b\n', encoding="utf-8")
    write_card(folder / CARD, {"license": "cc-by-4.0", "tags": ["math", "chat"], "task": "text-generation"},
               "A tiny test dataset.\n")
    return folder


def write_jsonl(path: Path, rows: Iterable[object]) -> None:
    path.write_text("".join(json.dumps(row) + "\n" for row in rows), encoding="utf-8")


# --- ways to derive a bad upload from a good one --------------------------------------------------------------------


def copy_upload(tmp: Path, good: Path) -> Path:
    folder = tmp / "upload"
    shutil.copytree(good, folder)
    return folder


def with_files(files: dict[str, bytes | str | None]) -> Callable[[Path, Path], Path]:
    """A copy of the good upload with files added, replaced or (None) removed."""

    def build(tmp: Path, good: Path) -> Path:
        folder = copy_upload(tmp, good)
        for name, content in files.items():
            path = folder / name
            if content is None:
                path.unlink()
            else:
                path.write_bytes(content.encode() if isinstance(content, str) else content)
        return folder

    return build


def with_config(**changes: Any) -> Callable[[Path, Path], Path]:
    def build(tmp: Path, good: Path) -> Path:
        folder = copy_upload(tmp, good)
        config = json.loads((folder / ADAPTER_CONFIG).read_text())
        (folder / ADAPTER_CONFIG).write_text(json.dumps({**config, **changes}))
        return folder

    return build


def with_card(front_matter: str) -> Callable[[Path, Path], Path]:
    return with_files({CARD: f"---\n{front_matter}---\n\nA card.\n"})


def with_tensors(change: Callable[[dict[str, np.ndarray]], None]) -> Callable[[Path, Path], Path]:
    """A copy whose safetensors file is rewritten (by the safetensors library) after `change` edits the tensors."""

    def build(tmp: Path, good: Path) -> Path:
        folder = copy_upload(tmp, good)
        tensors = load_file(folder / ADAPTER_WEIGHTS)
        change(tensors)
        save_file(tensors, folder / ADAPTER_WEIGHTS)
        return folder

    return build


def with_header(change: Callable[[dict[str, Any]], bytes | None], *, length: int | None = None,
                trailing: bytes = b"") -> Callable[[Path, Path], Path]:
    """A copy whose safetensors header is edited by hand, as a hostile writer would.

    `change` edits the header in place or returns raw bytes to use instead; `length` overrides the
    8-byte length prefix; `trailing` is appended after the tensor data.
    """

    def build(tmp: Path, good: Path) -> Path:
        folder = copy_upload(tmp, good)
        path = folder / ADAPTER_WEIGHTS
        raw = path.read_bytes()
        (header_len,) = struct.unpack("<Q", raw[:8])
        header = json.loads(raw[8 : 8 + header_len])
        data = raw[8 + header_len :]
        edited = change(header)
        encoded = edited if isinstance(edited, bytes) else json.dumps(header).encode()
        prefix = struct.pack("<Q", len(encoded) if length is None else length)
        path.write_bytes(prefix + encoded + data + trailing)
        return folder

    return build


def truncated(keep: int) -> Callable[[Path, Path], Path]:
    def build(tmp: Path, good: Path) -> Path:
        folder = copy_upload(tmp, good)
        path = folder / ADAPTER_WEIGHTS
        path.write_bytes(path.read_bytes()[:keep])
        return folder

    return build


def zipped(extra: Iterable[tuple[zipfile.ZipInfo | str, bytes]] = (), *,
           wrap: str = "") -> Callable[[Path, Path], Path]:
    """The good upload as a .zip (its files under `wrap`/), with `extra` members appended."""

    def build(tmp: Path, good: Path) -> Path:
        archive = tmp / "upload.zip"
        with zipfile.ZipFile(archive, "w", zipfile.ZIP_DEFLATED) as handle:
            for path in sorted(good.iterdir()):
                handle.write(path, f"{wrap}/{path.name}" if wrap else path.name)
            for info, data in extra:
                handle.writestr(info, data)
        return archive

    return build


def tarred(extra: Iterable[tarfile.TarInfo], *, suffix: str = ".tar.gz") -> Callable[[Path, Path], Path]:
    """The good upload as a tar (gzip-compressed unless `suffix` is .tar), with `extra` header-only members."""

    def build(tmp: Path, good: Path) -> Path:
        archive = tmp / f"upload{suffix}"
        with tarfile.open(archive, "w:gz" if suffix != ".tar" else "w") as handle:
            for path in sorted(good.iterdir()):
                handle.add(path, path.name)
            for info in extra:
                data = b"x" * info.size if info.isreg() else None
                handle.addfile(info, io.BytesIO(data) if data is not None else None)
        return archive

    return build


def tar_entry(name: str, kind: bytes = tarfile.REGTYPE, *, size: int = 0, linkname: str = "") -> tarfile.TarInfo:
    info = tarfile.TarInfo(name)
    info.type, info.size, info.linkname = kind, size, linkname
    return info


def zip_symlink(name: str, target: str) -> tuple[zipfile.ZipInfo, bytes]:
    info = zipfile.ZipInfo(name)
    info.create_system = 3  # Unix, so the mode bits in external_attr mean what they say
    info.external_attr = (stat.S_IFLNK | 0o777) << 16
    return info, target.encode()


def zip_bomb(tmp: Path, good: Path) -> Path:
    """16 MiB of zeros deflate to about 16 KiB: a ratio of ~1000, with honest sizes."""
    return zipped([("padding.bin", bytes(16 * 1024 * 1024))])(tmp, good)


def patch_last_member(archive: Path, fmt: str, local_offset: int, central_offset: int, value: int) -> None:
    """Overwrite one field of the archive's last member in both its local header and its central directory entry.

    zipfile writes honest headers; this is how a hostile tool writes a lie into them.
    """
    raw = bytearray(archive.read_bytes())
    with zipfile.ZipFile(archive) as handle:
        local = handle.infolist()[-1].header_offset
    central = raw.rfind(b"PK\x01\x02")
    struct.pack_into(fmt, raw, local + local_offset, value)
    struct.pack_into(fmt, raw, central + central_offset, value)
    archive.write_bytes(bytes(raw))


def zip_lying_sizes(tmp: Path, good: Path) -> Path:
    """A zip whose headers claim a file holds 10 bytes while its data inflates to 1 MiB."""
    archive = zipped([("data.bin", bytes(1024 * 1024))])(tmp, good)
    patch_last_member(archive, "<I", 22, 24, 10)  # the uncompressed size
    return archive


def zip_encrypted(tmp: Path, good: Path) -> Path:
    """A zip whose last member is flagged as encrypted (general purpose flag bit 0)."""
    archive = zipped([("secret.txt", b"ciphertext")])(tmp, good)
    patch_last_member(archive, "<H", 6, 8, 0x1)
    return archive


def zip_many_files(tmp: Path, good: Path) -> Path:
    return zipped([(f"extra/{i}.txt", b"x") for i in range(300)])(tmp, good)


def not_an_archive(tmp: Path, good: Path) -> Path:
    path = tmp / "upload.zip"
    path.write_bytes(b"this is not a zip file at all" * 10)
    return path


def unknown_format(tmp: Path, good: Path) -> Path:
    path = tmp / "upload.rar"
    path.write_bytes(b"Rar!\x1a\x07\x00")
    return path


def set_tensor(key: str, value: np.ndarray) -> Callable[[dict[str, np.ndarray]], None]:
    def change(tensors: dict[str, np.ndarray]) -> None:
        tensors[key] = value

    return change


def poison(value: float) -> Callable[[dict[str, np.ndarray]], None]:
    def change(tensors: dict[str, np.ndarray]) -> None:
        tensors[f"{Q0}.lora_B.weight"] = tensors[f"{Q0}.lora_B.weight"].copy()
        tensors[f"{Q0}.lora_B.weight"][3, 1] = value

    return change


def drop(key: str) -> Callable[[dict[str, np.ndarray]], None]:
    def change(tensors: dict[str, np.ndarray]) -> None:
        del tensors[key]

    return change


def keep_header(header: dict[str, Any]) -> None:
    """Leave the header as it is (the bad part is elsewhere)."""


def overlap_offsets(header: dict[str, Any]) -> None:
    entries = sorted((v for k, v in header.items() if k != "__metadata__"), key=lambda v: v["data_offsets"][0])
    entries[1]["data_offsets"] = entries[0]["data_offsets"]


def end_past_data(header: dict[str, Any]) -> None:
    header[f"{Q0}.lora_A.weight"]["data_offsets"][1] += 1 << 30


def wrong_byte_count(header: dict[str, Any]) -> None:
    header[f"{Q0}.lora_A.weight"]["shape"] = [4, 65]


def unknown_dtype(header: dict[str, Any]) -> None:
    header[f"{Q0}.lora_A.weight"]["dtype"] = "Q4_K"


def not_json(header: dict[str, Any]) -> bytes:
    return b"{this is not json" + b" " * 7


def weights_as(convert: Callable[[Path], bytes]) -> Callable[[Path, Path], Path]:
    """A copy whose adapter_model.safetensors holds another format (what `convert` makes of the good upload folder)."""

    def build(tmp: Path, good: Path) -> Path:
        folder = copy_upload(tmp, good)
        (folder / ADAPTER_WEIGHTS).write_bytes(convert(good))
        return folder

    return build


def as_pickle(good: Path) -> bytes:
    """The tensors pickled, as pickle.dump and torch.save(..., _use_new_zipfile_serialization=False) write them."""
    return pickle.dumps(load_file(good / ADAPTER_WEIGHTS), protocol=4)


def as_torch_zip(good: Path) -> bytes:
    """torch.save's layout, without torch: a zip whose first member is <name>/data.pkl."""
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w") as handle:
        handle.writestr("adapter_model/data.pkl", as_pickle(good))
        handle.writestr("adapter_model/version", "3\n")
    return buffer.getvalue()


def as_zip(good: Path) -> bytes:
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w") as handle:
        for path in sorted(good.iterdir()):
            handle.write(path, path.name)
    return buffer.getvalue()


def as_npy(good: Path) -> bytes:
    buffer = io.BytesIO()
    np.save(buffer, load_file(good / ADAPTER_WEIGHTS)[f"{Q0}.lora_A.weight"])
    return buffer.getvalue()


def pickle_bytes(_: Path) -> bytes:
    return pickle.dumps({"weights": [1.0, 2.0]}, protocol=2)


LFS_POINTER = ("version https://git-lfs.github.com/spec/v1\noid sha256:" + "ab" * 32 + "\nsize 8192\n").encode()
NOT_SAFETENSORS = "not safetensors: "


def huge_dataset_line(tmp: Path, good: Path) -> Path:
    folder = copy_upload(tmp, good)
    with open(folder / "train.jsonl", "ab") as handle:
        handle.write(b'{"text": "' + b"a" * (17 * 1024 * 1024) + b'"}\n')
    return folder


def dataset_only_card(tmp: Path, good: Path) -> Path:
    folder = tmp / "upload"
    folder.mkdir()
    shutil.copy(good / CARD, folder / CARD)
    return folder


GOOD_ROW = '{"prompt": "p", "response": "r"}\n'

BAD_UPLOADS: list[BadUpload] = [
    # archives
    BadUpload("zip_traversal", "adapter", zipped([("../evil.txt", b"x")]), "archive", "climbs out of the archive"),
    BadUpload("zip_nested_traversal", "adapter", zipped([("a/../../evil.txt", b"x")]), "archive", "climbs out"),
    BadUpload("zip_absolute_path", "adapter", zipped([("/etc/cron.d/evil", b"x")]), "archive", "absolute path"),
    BadUpload("zip_windows_path", "adapter", zipped([("..\\evil.txt", b"x")]), "archive", "backslashes"),
    BadUpload("zip_symlink", "adapter", zipped([zip_symlink("link", "/etc/passwd")]), "archive", "symbolic link"),
    BadUpload("zip_encrypted", "adapter", zip_encrypted, "archive", "encrypted"),
    BadUpload("zip_duplicate_member", "adapter", zipped([(ADAPTER_CONFIG, b"{}")]), "archive", "appears twice"),
    BadUpload("zip_bomb_ratio", "adapter", zip_bomb, "archive", "zip bomb"),
    BadUpload("zip_lying_sizes", "adapter", zip_lying_sizes, "archive", "corrupt"),
    BadUpload("zip_path_too_long", "adapter", zipped([("/".join(["d" * 200] * 6), b"x")]), "archive",
              "longer than 1024 bytes"),
    BadUpload("zip_too_many_files", "adapter", zip_many_files, "archive", "more than 256 entries"),
    BadUpload("not_an_archive", "adapter", not_an_archive, "archive", "not a readable"),
    BadUpload("unknown_upload_format", "adapter", unknown_format, "upload", "expected a folder or an archive"),
    BadUpload("tar_traversal", "adapter", tarred([tar_entry("../../evil.sh", size=3)]), "archive", "climbs out"),
    BadUpload("tar_absolute_path", "adapter", tarred([tar_entry("/tmp/evil.sh", size=3)]), "archive", "absolute path"),
    BadUpload("tar_symlink", "adapter", tarred([tar_entry("link", tarfile.SYMTYPE, linkname="/etc/passwd")]),
              "archive", "symbolic link"),
    BadUpload("tar_hardlink", "adapter", tarred([tar_entry("link", tarfile.LNKTYPE, linkname="/etc/passwd")], suffix=".tar"),
              "archive", "hard link"),
    BadUpload("tar_device", "adapter", tarred([tar_entry("dev", tarfile.CHRTYPE)], suffix=".tgz"), "archive",
              "device file"),
    BadUpload("tar_fifo", "adapter", tarred([tar_entry("pipe", tarfile.FIFOTYPE)]), "archive", "FIFO"),
    BadUpload("tar_too_large", "adapter", tarred([tar_entry("big.bin", size=20_000)]), "archive",
              "big.bin: unpacks to more than 10000 bytes", {"limits": ArchiveLimits(max_file_bytes=10_000)}),
    # files
    BadUpload("pickle_bin_only", "adapter", with_files({ADAPTER_WEIGHTS: None, "adapter_model.bin": b"\x80\x04K."}),
              "files.pickle", "safe_serialization=True"),
    BadUpload("pickle_pt_extra", "adapter", with_files({"training_args.pt": b"\x80\x04K."}), "files.pickle",
              "safetensors.torch.save_file"),
    BadUpload("pickle_named_safetensors", "adapter", weights_as(as_pickle), "files.pickle",
              f"{ADAPTER_WEIGHTS} is a Python pickle (PyTorch .bin/.pt) despite its name, which can run code"),
    BadUpload("torch_zip_named_safetensors", "adapter", weights_as(as_torch_zip), "files.pickle",
              f"{ADAPTER_WEIGHTS} is a PyTorch checkpoint (torch.save's zip around a pickle) despite its name"),
    BadUpload("pickle_named_txt", "adapter", with_files({"notes.txt": pickle.dumps([1, 2], protocol=5)}),
              "files.pickle", "notes.txt is a Python pickle (PyTorch .bin/.pt) despite its name"),
    BadUpload("missing_config", "adapter", with_files({ADAPTER_CONFIG: None}), "files.required",
              f"missing {ADAPTER_CONFIG}"),
    BadUpload("unexpected_file", "adapter", with_files({"notes.txt": "hi"}), "files.unexpected", "notes.txt"),
    BadUpload("oversized_file", "adapter", with_files({}), "files.size", f"{ADAPTER_WEIGHTS} is 8192 bytes; at most 4096",
              {"max_file_bytes": 4096}),
    # safetensors headers
    BadUpload("truncated_in_header", "adapter", truncated(100), "weights.header", "header claims"),
    BadUpload("truncated_in_data", "adapter", truncated(2000), "weights.header", "past the end of the data"),
    BadUpload("lying_header_length", "adapter", with_header(keep_header, length=1 << 40), "weights.header",
              "outside 1.."),
    BadUpload("header_length_past_file", "adapter", with_header(keep_header, length=1 << 20), "weights.header",
              "header claims"),
    BadUpload("overlapping_offsets", "adapter", with_header(overlap_offsets), "weights.header", "overlaps"),
    BadUpload("offsets_out_of_range", "adapter", with_header(end_past_data), "weights.header", "past the end"),
    BadUpload("shape_bytes_mismatch", "adapter", with_header(wrong_byte_count), "weights.header",
              "needs 1040 bytes but data_offsets span 1024"),
    BadUpload("unknown_dtype", "adapter", with_header(unknown_dtype), "weights.header", "unknown dtype 'Q4_K'"),
    BadUpload("non_json_header", "adapter", with_header(not_json), "weights.header", "not valid UTF-8 JSON"),
    BadUpload("trailing_bytes", "adapter", with_header(keep_header, trailing=b"\0" * 16), "weights.header",
              "tensor data covers"),
    # another format under the weights' name: said for what it is, with the way to safetensors
    BadUpload("header_of_a_pickle", "adapter", weights_as(pickle_bytes), "weights.header",
              f"{ADAPTER_WEIGHTS}: is a Python pickle (PyTorch .bin/.pt), {NOT_SAFETENSORS}save it with safetensors, "
              "e.g. `model.save_pretrained(dir, safe_serialization=True)`"),
    BadUpload("header_of_a_torch_zip", "adapter", weights_as(as_torch_zip), "weights.header",
              f"is a PyTorch checkpoint (torch.save's zip around a pickle), {NOT_SAFETENSORS}save it with safetensors"),
    BadUpload("header_of_a_zip", "adapter", weights_as(as_zip), "weights.header",
              f"is a zip archive, {NOT_SAFETENSORS}unpack it"),
    BadUpload("header_of_gzip", "adapter", weights_as(lambda good: gzip.compress((good / ADAPTER_WEIGHTS).read_bytes(),
                                                                                  mtime=0)),
              "weights.header", f"is gzip-compressed data, {NOT_SAFETENSORS}decompress it first"),
    BadUpload("header_of_a_gguf", "adapter", weights_as(lambda good: b"GGUF" + struct.pack("<IQQ", 3, 0, 0)),
              "weights.header", f"is a GGUF file (llama.cpp), {NOT_SAFETENSORS}upload the PEFT folder"),
    BadUpload("header_of_npy", "adapter", weights_as(as_npy), "weights.header",
              f"is a NumPy .npy array, {NOT_SAFETENSORS}save the tensors with `safetensors.numpy.save_file`"),
    BadUpload("header_of_hdf5", "adapter", weights_as(lambda good: b"\x89HDF\r\n\x1a\n" + bytes(504)),
              "weights.header", f"is an HDF5 file (Keras .h5), {NOT_SAFETENSORS}save it with safetensors"),
    BadUpload("header_of_an_lfs_pointer", "adapter", weights_as(lambda good: LFS_POINTER), "weights.header",
              f"is a Git LFS pointer, {NOT_SAFETENSORS}it only names the real file; fetch that with `git lfs pull`"),
    BadUpload("header_of_json", "adapter", weights_as(lambda good: (good / ADAPTER_CONFIG).read_bytes()),
              "weights.header", f"is a JSON document, {NOT_SAFETENSORS}check the file names"),
    BadUpload("header_of_text", "adapter", weights_as(lambda good: b"<!DOCTYPE html>\n<title>404 Not Found</title>\n"),
              "weights.header", f"is a text file, {NOT_SAFETENSORS}upload the weights"),
    # tensors against the base model
    BadUpload("wrong_shape_a", "adapter", with_tensors(set_tensor(f"{Q0}.lora_A.weight", np.zeros((4, 60), np.float32))),
              "weights.shapes", "expected [r, 64]"),
    BadUpload("wrong_shape_b", "adapter", with_tensors(set_tensor(f"{Q0}.lora_B.weight", np.zeros((60, 4), np.float32))),
              "weights.shapes", "expected [64, r]"),
    BadUpload("module_not_in_base", "adapter", with_tensors(lambda t: t.update({
        "base_model.model.model.layers.7.self_attn.q_proj.lora_A.weight": np.zeros((4, 64), np.float32),
        "base_model.model.model.layers.7.self_attn.q_proj.lora_B.weight": np.zeros((64, 4), np.float32)})),
        "weights.modules", "model.layers.7.self_attn.q_proj is not a module of the base model"),
    BadUpload("missing_lora_b", "adapter", with_tensors(drop(f"{Q0}.lora_B.weight")), "weights.pairs", "no lora_B.weight"),
    BadUpload("not_a_lora_tensor", "adapter", with_tensors(set_tensor("base_model.model.lm_head.weight",
                                                                      np.zeros((512, 64), np.float32))),
              "weights.names", "lm_head.weight is not a LoRA factor"),
    BadUpload("rank_mismatch", "adapter", with_config(r=8), "weights.rank", "says r = 8"),
    BadUpload("integer_weights", "adapter", with_tensors(set_tensor(f"{Q0}.lora_A.weight", np.zeros((4, 64), np.int32))),
              "weights.dtype", "is I32; expected a float type"),
    BadUpload("nan_weights", "adapter", with_tensors(poison(np.nan)), "weights.finite", "1 NaN"),
    BadUpload("f64_past_float32", "adapter", with_tensors(set_tensor(f"{Q0}.lora_A.weight", np.full((4, 64), 1e300))),
              "weights.finite", "256 infinite values once converted to float32"),
    BadUpload("inf_weights", "adapter", with_tensors(poison(np.inf)), "weights.finite", "1 infinite"),
    BadUpload("untargeted_module", "adapter", with_config(target_modules=["q_proj"]), "weights.targets",
              "v_proj has factors but target_modules"),
    # adapter_config.json
    BadUpload("config_not_json", "adapter", with_files({ADAPTER_CONFIG: '{"r": 4,'}), "config.json", "not valid JSON"),
    BadUpload("config_not_object", "adapter", with_files({ADAPTER_CONFIG: "[1, 2]"}), "config.json", "must be a JSON object"),
    BadUpload("peft_type_not_lora", "adapter", with_config(peft_type="IA3"), "config.peft_type", '"IA3"'),
    BadUpload("rank_zero", "adapter", with_config(r=0), "config.rank", "a positive integer"),
    BadUpload("rank_too_large", "adapter", with_config(r=10**6), "config.rank", "a positive integer up to 65536"),
    BadUpload("alpha_overflows_float", "adapter", with_config(lora_alpha=10**400), "config.alpha", "a positive number"),
    BadUpload("config_giant_integer", "adapter", with_files({ADAPTER_CONFIG: '{"r": ' + "9" * 5000 + "}"}), "config.json",
              "not valid JSON"),
    BadUpload("alpha_not_number", "adapter", with_config(lora_alpha="16"), "config.alpha", "a positive number"),
    BadUpload("no_target_modules", "adapter", with_config(target_modules=[]), "config.target_modules", "non-empty list"),
    BadUpload("use_dora", "adapter", with_config(use_dora=True), "config.features", "DoRA"),
    BadUpload("rank_pattern_disagrees", "adapter", with_config(rank_pattern={"q_proj": 8}), "weights.rank",
              "q_proj has rank 4; adapter_config.json says r = 8"),
    BadUpload("rank_pattern_not_a_rank", "adapter", with_config(rank_pattern={"q_proj": "8"}), "config.features",
              'rank_pattern["q_proj"] = "8": expected a positive integer rank'),
    BadUpload("alpha_pattern_bad_regex", "adapter", with_config(alpha_pattern={"q_proj(": 8}), "config.features",
              "is not a valid module pattern"),
    BadUpload("modules_to_save", "adapter", with_config(modules_to_save=["lm_head"]), "config.features", "full copies"),
    BadUpload("bias_all", "adapter", with_config(bias="all"), "config.features", "trained biases"),
    BadUpload("pissa_init", "adapter", with_config(init_lora_weights="pissa_niter_4"), "config.features",
              "path_initial_model_for_weight_conversion"),
    BadUpload("wrong_base_model", "adapter", with_config(base_model_name_or_path="meta-llama/Llama-3-8B"),
              "config.base_model", "not a base model on the hub"),
    # the card
    BadUpload("bad_card_yaml", "adapter", with_card("license: [apache-2.0\n"), "card.front_matter", "is not valid YAML at line"),
    BadUpload("card_yaml_bomb", "adapter", with_card("a: &a [x, x]\nb: &b [*a, *a]\nc: [*b, *b]\n"), "card.front_matter",
              "aliases"),
    BadUpload("card_deep_nesting", "adapter", with_card("a: " + "[" * 1000 + "\n"), "card.front_matter", "RecursionError"),
    BadUpload("card_not_mapping", "adapter", with_card("- just\n- a list\n"), "card.front_matter", "must be a mapping"),
    BadUpload("unknown_license", "adapter", with_card("license: do-what-you-want\n"), "card.license", "not a known license"),
    BadUpload("missing_license", "adapter", with_card("tags: [lora]\n"), "card.license", "is missing from the front matter"),
    BadUpload("card_tags_not_list", "adapter", with_card("license: mit\ntags: 7\n"), "card.fields", "list of non-empty strings"),
    BadUpload("card_base_mismatch", "adapter", with_card("license: mit\nbase_model: other/model\n"), "card.base_model",
              f"but the adapter is for {TINY_BASE_NAME}"),
    # datasets
    BadUpload("jsonl_bad_rows", "dataset", with_files({"train.jsonl": GOOD_ROW + "{not json\n" + GOOD_ROW + '{"prompt": "p"}\n'}),
              "dataset.rows", "train.jsonl line 2: line is not one JSON value"),
    BadUpload("jsonl_missing_field", "dataset", with_files({"train.jsonl": GOOD_ROW + '{"prompt": "p"}\n'}),
              "dataset.rows", "line 2: `response` must be a non-empty string"),
    BadUpload("jsonl_mixed_formats", "dataset", with_files({"train.jsonl": GOOD_ROW + '{"text": "t"}\n'}),
              "dataset.rows", "row is in text format but this file's rows are instruction (from line 1)"),
    BadUpload("jsonl_not_object", "dataset", with_files({"train.jsonl": GOOD_ROW + "[1, 2]\n"}), "dataset.rows",
              "row must be an object, got list"),
    BadUpload("jsonl_nan", "dataset", with_files({"train.jsonl": '{"text": "t", "score": NaN}\n'}), "dataset.rows",
              "NaN is not valid JSON"),
    BadUpload("jsonl_not_utf8", "dataset", with_files({"train.jsonl": GOOD_ROW.encode() + b'{"text": "\xff"}\n'}),
              "dataset.rows", "line 2: line is not UTF-8"),
    BadUpload("jsonl_huge_line", "dataset", huge_dataset_line, "dataset.rows", "longer than"),
    BadUpload("jsonl_lone_surrogate", "dataset", with_files({"train.jsonl": GOOD_ROW + '{"text": "a\\ud800b"}\n'}),
              "dataset.rows", "line 2: `text` holds an unpaired surrogate (\\ud800)"),
    BadUpload("chat_bad_role", "dataset", with_files({"eval.jsonl": '{"messages": [{"role": "wizard", "content": "x"}]}\n'}),
              "dataset.rows", "messages[0] must be"),
    BadUpload("chat_no_assistant", "dataset", with_files({"eval.jsonl": '{"messages": [{"role": "user", "content": "x"}]}\n'}),
              "dataset.rows", "no assistant message"),
    BadUpload("csv_wrong_field_count", "dataset", with_files({"test.csv": "text,source\nok,a\ntoo,many,fields\n"}),
              "dataset.rows", "test.csv line 3: record has 3 fields but the header has 2"),
    BadUpload("csv_missing_columns", "dataset", with_files({"test.csv": "question,answer\nq,a\n"}), "dataset.rows",
              "expected either prompt and response, or text"),
    BadUpload("csv_bad_quoting", "dataset", with_files({"test.csv": 'text\n"unclosed "quote" here\n'}), "dataset.rows",
              "unreadable CSV"),
    BadUpload("empty_data_file", "dataset", with_files({"train.jsonl": "\n\n"}), "dataset.rows", "holds no rows"),
    BadUpload("dataset_no_data_files", "dataset", dataset_only_card, "files.required",
              "at least one .jsonl, .csv or .parquet"),
    BadUpload("dataset_parquet_truncated", "dataset", with_files({"train.parquet": b"PAR1"}), "dataset.rows",
              "train.parquet: not a Parquet file ("),
    BadUpload("dataset_unknown_license", "dataset", with_card("license: proprietary-ish\n"), "card.license",
              "not a known license"),
    BadUpload("dataset_split_missing_file", "dataset", with_card("license: mit\nsplits: {train: missing.jsonl}\n"),
              "dataset.splits", "missing.jsonl, which is not among the data files"),
    BadUpload("dataset_zip_traversal", "dataset", zipped([("../../x.jsonl", GOOD_ROW.encode())], wrap="ds"), "archive",
              "climbs out"),
]
