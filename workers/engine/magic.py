"""What a file really is, told by its first bytes: the one table of magic numbers the engine knows.

Files arrive under names chosen by people (or by a rename), so a `.safetensors` file may be a
pickle, a zip, a GGUF, a Git LFS pointer...; `identify` names the format so that an error can say
what the file is and how to get safetensors instead, and so that a pickle is refused under any name.
Nothing here parses more than the first SNIFF_BYTES.
"""

from __future__ import annotations

import codecs
import struct
from dataclasses import dataclass
from pathlib import Path

SNIFF_BYTES = 512  # enough for a zip's first member name and a text file's first line
MAX_SAFETENSORS_HEADER = 100 * 1024 * 1024  # the same bound the safetensors library enforces
SAVE_SAFETENSORS = "save it with safetensors, e.g. `model.save_pretrained(dir, safe_serialization=True)`"


@dataclass(frozen=True)
class FileFormat:
    name: str  # what the file is, as a sentence's object: "a Python pickle (PyTorch .bin/.pt)"
    fix: str  # how to get a safetensors file instead
    pickle: bool = False  # loading it runs a pickle, which can run any code


SAFETENSORS = FileFormat("a safetensors file", "")
PICKLE = FileFormat("a Python pickle (PyTorch .bin/.pt)", SAVE_SAFETENSORS, pickle=True)
TORCH_ZIP = FileFormat("a PyTorch checkpoint (torch.save's zip around a pickle)", SAVE_SAFETENSORS, pickle=True)
ZIP = FileFormat("a zip archive", "unpack it and upload the files inside, or upload the archive under a name "
                 "ending in .zip")
GZIP = FileFormat("gzip-compressed data", "decompress it first, or upload a .tar.gz under a name ending in .tar.gz")
GGUF = FileFormat("a GGUF file (llama.cpp)", "upload the PEFT folder that `model.save_pretrained(dir, "
                  "safe_serialization=True)` writes, not a GGUF export")
NPY = FileFormat("a NumPy .npy array", "save the tensors with `safetensors.numpy.save_file`")
HDF5 = FileFormat("an HDF5 file (Keras .h5)", SAVE_SAFETENSORS)
LFS_POINTER = FileFormat("a Git LFS pointer", "it only names the real file; fetch that with `git lfs pull` first")
JSON = FileFormat("a JSON document", "check the file names: a config may have been saved under the weights' name")
TEXT = FileFormat("a text file", "upload the weights that `model.save_pretrained(dir, safe_serialization=True)` "
                  "writes")

# Prefix -> format, most specific first. Pickle protocols 2-5 open with PROTO (0x80) and the protocol
# number; torch.save writes a zip whose first member is <name>/data.pkl (told apart from other zips below).
MAGIC: tuple[tuple[bytes, FileFormat], ...] = (
    *((b"\x80" + bytes([protocol]), PICKLE) for protocol in range(2, 6)),
    (b"PK\x03\x04", ZIP),
    (b"PK\x05\x06", ZIP),  # an empty zip
    (b"\x1f\x8b", GZIP),
    (b"GGUF", GGUF),
    (b"\x93NUMPY", NPY),
    (b"\x89HDF\r\n\x1a\n", HDF5),
    (b"version https://git-lfs.github.com/spec/", LFS_POINTER),
)


def looks_like_safetensors(head: bytes) -> bool:
    """An 8-byte header length in range followed by '{', as every safetensors writer starts."""
    if len(head) < 9:
        return False
    (length,) = struct.unpack("<Q", head[:8])
    return 0 < length <= MAX_SAFETENSORS_HEADER and head[8:9] == b"{"


def identify(head: bytes) -> FileFormat | None:
    """The format of a file whose first bytes are `head` (SNIFF_BYTES of them, or the whole file), if known.

    Safetensors wins first: a valid header whose length bytes happen to read like a magic number
    (a length of 640 starts with 0x80 0x02) is still safetensors.
    """
    if looks_like_safetensors(head):
        return SAFETENSORS
    for magic, found in MAGIC:
        if head.startswith(magic):
            return TORCH_ZIP if found is ZIP and _first_zip_member(head).endswith(b"data.pkl") else found
    return _text_format(head)


def _first_zip_member(head: bytes) -> bytes:
    """The name in a zip's first local file header (b"" when `head` is too short to hold it)."""
    if len(head) < 30:
        return b""
    (name_length,) = struct.unpack("<H", head[26:28])
    return head[30 : 30 + name_length]


def _text_format(head: bytes) -> FileFormat | None:
    """JSON or plain text: UTF-8 (a character cut off at the end of `head` is fine) with no control characters."""
    try:
        text = codecs.getincrementaldecoder("utf-8")().decode(head, final=False)
    except UnicodeDecodeError:
        return None
    text = text.removeprefix("\ufeff")
    if not text.strip() or not all(char.isprintable() or char in "\t\n\r" for char in text):
        return None
    return JSON if text.lstrip()[:1] in ("{", "[") else TEXT


def read_head(path: Path | str, size: int = SNIFF_BYTES) -> bytes:
    """The first `size` bytes of the file at `path`."""
    with open(path, "rb") as handle:
        return handle.read(size)
