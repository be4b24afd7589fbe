"""safetensors without trust: a strict header parser and a streaming, atomic writer.

The format: an 8-byte little-endian header length N, N bytes of JSON mapping tensor names to
{dtype, shape, data_offsets} (offsets relative to the end of the header), then the data.
`parse_header` checks everything a malicious or truncated file can lie about before any byte of
tensor data is touched; it never raises anything but EngineInputError, and a file that is really
something else (a pickle, a zip, a GGUF...) is named for what it is (`magic.identify`).
"""

from __future__ import annotations

import json
import math
import struct
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from workers.engine.errors import EngineInputError
from workers.engine.fsutil import atomic_writer
from workers.engine.magic import MAX_SAFETENSORS_HEADER, SAFETENSORS, SNIFF_BYTES, identify

DTYPE_SIZES: dict[str, int] = {
    "BOOL": 1, "U8": 1, "I8": 1, "F8_E5M2": 1, "F8_E4M3": 1,
    "I16": 2, "U16": 2, "F16": 2, "BF16": 2,
    "I32": 4, "U32": 4, "F32": 4,
    "I64": 8, "U64": 8, "F64": 8,
}
FLOAT_DTYPES = frozenset({"F16", "BF16", "F32", "F64"})
MAX_HEADER_BYTES = MAX_SAFETENSORS_HEADER
MAX_TENSOR_RANK = 8


@dataclass(frozen=True)
class TensorInfo:
    name: str
    dtype: str
    shape: tuple[int, ...]
    start: int  # absolute byte offset in the file
    end: int

    @property
    def numel(self) -> int:
        return math.prod(self.shape)


@dataclass(frozen=True)
class SafetensorsHeader:
    tensors: dict[str, TensorInfo]
    metadata: dict[str, str] = field(default_factory=dict)
    data_start: int = 0


def parse_header(prefix: bytes, file_size: int, *, file: str = "model.safetensors") -> SafetensorsHeader:
    """Validate a safetensors header given the file's first bytes (at least 8 + N) and its total size."""
    found = identify(prefix[:SNIFF_BYTES])
    if found is not None and found is not SAFETENSORS:
        # Say what the file is, not that its first 8 bytes make an absurd header length.
        raise EngineInputError(f"is {found.name}, not safetensors: {found.fix}", file=file, code="not_safetensors")
    if file_size < 8 or len(prefix) < 8:
        raise EngineInputError("file is shorter than the 8-byte header length", file=file, code="truncated")
    (header_len,) = struct.unpack("<Q", prefix[:8])
    if header_len == 0 or header_len > MAX_HEADER_BYTES:
        raise EngineInputError(
            f"header length {header_len} is outside 1..{MAX_HEADER_BYTES} bytes", file=file, code="header_length"
        )
    if 8 + header_len > file_size or len(prefix) < 8 + header_len:
        raise EngineInputError(
            f"header claims {header_len} bytes but the file has {file_size - 8} after the length",
            file=file, code="truncated",
        )
    try:
        raw = json.loads(prefix[8 : 8 + header_len].decode("utf-8"))
    except (ValueError, RecursionError) as exc:  # ValueError: also an integer over Python's 4300-digit limit
        raise EngineInputError(f"header is not valid UTF-8 JSON ({exc})", file=file, code="header_json") from None
    if not isinstance(raw, dict):
        raise EngineInputError("header must be a JSON object", file=file, code="header_json")

    metadata = raw.pop("__metadata__", None) or {}
    if not isinstance(metadata, dict) or not all(isinstance(k, str) and isinstance(v, str) for k, v in metadata.items()):
        raise EngineInputError("__metadata__ must map strings to strings", file=file, field="__metadata__")

    data_start = 8 + header_len
    data_size = file_size - data_start
    tensors: dict[str, TensorInfo] = {}
    for name, entry in raw.items():
        tensors[name] = _parse_entry(name, entry, data_start, data_size, file)

    expected = 0
    for info in sorted(tensors.values(), key=lambda t: (t.start, t.end)):
        if info.start != data_start + expected:
            kind = "overlaps the previous tensor" if info.start < data_start + expected else "leaves a gap before it"
            raise EngineInputError(f"data range {kind}", file=file, field=info.name, code="offsets")
        expected = info.end - data_start
    if expected != data_size:
        raise EngineInputError(
            f"tensor data covers {expected} bytes but the file holds {data_size}", file=file, code="offsets"
        )
    return SafetensorsHeader(tensors=tensors, metadata=metadata, data_start=data_start)


def _parse_entry(name: str, entry: object, data_start: int, data_size: int, file: str) -> TensorInfo:
    if not isinstance(entry, dict):
        raise EngineInputError("entry must be an object with dtype, shape, data_offsets", file=file, field=name)
    dtype = entry.get("dtype")
    if not isinstance(dtype, str) or dtype not in DTYPE_SIZES:
        raise EngineInputError(
            f"unknown dtype {dtype!r}; expected one of {', '.join(DTYPE_SIZES)}", file=file, field=name, code="dtype"
        )
    shape = entry.get("shape")
    if (
        not isinstance(shape, list)
        or len(shape) > MAX_TENSOR_RANK
        or not all(isinstance(d, int) and not isinstance(d, bool) and d >= 0 for d in shape)
    ):
        raise EngineInputError(
            f"shape must be a list of at most {MAX_TENSOR_RANK} non-negative integers", file=file, field=name, code="shape"
        )
    offsets = entry.get("data_offsets")
    if (
        not isinstance(offsets, list)
        or len(offsets) != 2
        or not all(isinstance(o, int) and not isinstance(o, bool) and o >= 0 for o in offsets)
        or offsets[0] > offsets[1]
    ):
        raise EngineInputError("data_offsets must be [begin, end] with 0 <= begin <= end", file=file, field=name, code="offsets")
    begin, end = offsets
    if end > data_size:
        raise EngineInputError(
            f"data_offsets end {end} is past the end of the data ({data_size} bytes)", file=file, field=name, code="offsets"
        )
    nbytes = math.prod(shape) * DTYPE_SIZES[dtype]
    if end - begin != nbytes:
        raise EngineInputError(
            f"shape {shape} of {dtype} needs {nbytes} bytes but data_offsets span {end - begin}",
            file=file, field=name, code="shape",
        )
    return TensorInfo(name=name, dtype=dtype, shape=tuple(shape), start=data_start + begin, end=data_start + end)


def read_header(path: Path | str) -> SafetensorsHeader:
    """Read and validate the header of a safetensors file on disk, touching only its first bytes."""
    path = Path(path)
    size = path.stat().st_size
    with open(path, "rb") as handle:
        head = handle.read(SNIFF_BYTES)  # also what `identify` needs to name a file that is not safetensors
        if len(head) >= 8:
            (header_len,) = struct.unpack("<Q", head[:8])
            if 0 < header_len <= MAX_HEADER_BYTES and len(head) < 8 + header_len:
                head += handle.read(8 + header_len - len(head))
    return parse_header(head, size, file=path.name)


NUMPY_DTYPES: dict[str, str] = {
    "BOOL": "bool", "U8": "<u1", "I8": "<i1", "I16": "<i2", "U16": "<u2", "F16": "<f2",
    "I32": "<i4", "U32": "<u4", "F32": "<f4", "I64": "<i8", "U64": "<u8", "F64": "<f8",
}


def load_tensor_f32(path: Path | str, info: TensorInfo) -> np.ndarray:
    """Memory-map one tensor and return it as float32 (BF16 is widened by bit shifting)."""
    if info.dtype == "BF16":
        raw = np.memmap(path, dtype="<u2", mode="r", offset=info.start, shape=(info.numel,))
        return (raw.astype(np.uint32) << 16).view(np.float32).reshape(info.shape)
    if info.dtype not in NUMPY_DTYPES or info.dtype not in FLOAT_DTYPES:
        raise EngineInputError(f"dtype {info.dtype} is not a float type", field=info.name, code="dtype")
    if info.numel == 0:
        return np.zeros(info.shape, dtype=np.float32)
    data = np.memmap(path, dtype=NUMPY_DTYPES[info.dtype], mode="r", offset=info.start, shape=(info.numel,))
    return np.asarray(data, dtype=np.float32).reshape(info.shape)


@dataclass(frozen=True)
class TensorSpec:
    name: str
    dtype: str
    shape: tuple[int, ...]

    @property
    def nbytes(self) -> int:
        return math.prod(self.shape) * DTYPE_SIZES[self.dtype]


class SafetensorsStreamWriter:
    """Write a safetensors file tensor by tensor, in the declared order, atomically.

    The header needs every shape up front, so the caller declares the specs first; then each
    `write(name, data)` streams one tensor's bytes, and the file appears under its name only on
    a clean exit. Peak memory is the largest single tensor, never the whole file.
    """

    def __init__(
        self, path: Path | str, specs: Iterable[TensorSpec], metadata: Mapping[str, str] | None = None, *, digest: Any = None
    ) -> None:
        self.path = Path(path)
        self.specs = list(specs)
        self.metadata = dict(metadata or {})
        self.digest = digest  # e.g. hashlib.sha256(): fed every byte written, so nobody reads the file back to hash it
        self._next = 0
        self._ctx = None
        self._handle = None

    def __enter__(self) -> SafetensorsStreamWriter:
        header: dict[str, object] = {}
        if self.metadata:
            header["__metadata__"] = self.metadata
        offset = 0
        for spec in self.specs:
            header[spec.name] = {"dtype": spec.dtype, "shape": list(spec.shape), "data_offsets": [offset, offset + spec.nbytes]}
            offset += spec.nbytes
        encoded = json.dumps(header, separators=(",", ":")).encode()
        encoded += b" " * (-len(encoded) % 8)  # align tensor data to 8 bytes, as the reference writer does
        self._ctx = atomic_writer(self.path)
        self._handle = self._ctx.__enter__()
        self._emit(struct.pack("<Q", len(encoded)) + encoded)
        return self

    def _emit(self, raw: bytes | memoryview) -> None:
        self._handle.write(raw)
        if self.digest is not None:
            self.digest.update(raw)

    def write(self, name: str, data: bytes | memoryview | np.ndarray) -> None:
        spec = self.specs[self._next]
        if spec.name != name:
            raise ValueError(f"expected tensor {spec.name!r} next, got {name!r}")
        raw = memoryview(np.ascontiguousarray(data) if isinstance(data, np.ndarray) else data).cast("B")  # no copy
        if len(raw) != spec.nbytes:
            raise ValueError(f"{name}: expected {spec.nbytes} bytes, got {len(raw)}")
        self._emit(raw)
        self._next += 1

    def __exit__(self, exc_type, exc, tb) -> None:
        if exc_type is None and self._next != len(self.specs):
            exc = ValueError(f"only {self._next} of {len(self.specs)} tensors were written")
            self._ctx.__exit__(type(exc), exc, None)
            raise exc
        self._ctx.__exit__(exc_type, exc, tb)
