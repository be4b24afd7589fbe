"""Fuzz parse_header: whatever the bytes, the only exception is EngineInputError (a worker never crashes on them)."""

from __future__ import annotations

import json
import math
import struct
from typing import Any

from hypothesis import given, settings
from hypothesis import strategies as st

from workers.engine.errors import EngineInputError
from workers.engine.safetensors_io import DTYPE_SIZES, SafetensorsHeader, parse_header

FUZZ = settings(max_examples=300, deadline=None)

json_values = st.recursive(
    st.none() | st.booleans() | st.integers(min_value=-(2**70), max_value=2**70) | st.floats() | st.text(max_size=12),
    lambda children: st.lists(children, max_size=4) | st.dictionaries(st.text(max_size=8), children, max_size=4),
    max_leaves=12,
)


@st.composite
def valid_files(draw: st.DrawFn) -> tuple[dict[str, Any], bytes]:
    """A header that parse_header must accept, and the data it describes."""
    header: dict[str, Any] = {}
    offset = 0
    for index in range(draw(st.integers(0, 4))):
        dtype = draw(st.sampled_from(sorted(DTYPE_SIZES)))
        shape = draw(st.lists(st.integers(0, 5), max_size=3))
        size = math.prod(shape) * DTYPE_SIZES[dtype]
        header[f"t{index}"] = {"dtype": dtype, "shape": shape, "data_offsets": [offset, offset + size]}
        offset += size
    if draw(st.booleans()):
        header["__metadata__"] = {"format": "pt"}
    return header, bytes(offset)


def encode(header: object, data: bytes, length: int | None = None) -> bytes:
    encoded = json.dumps(header).encode()
    return struct.pack("<Q", len(encoded) if length is None else length) + encoded + data


def parse_or_refuse(prefix: bytes, file_size: int) -> SafetensorsHeader | None:
    try:
        return parse_header(prefix, file_size)
    except EngineInputError:
        return None


@FUZZ
@given(st.binary(max_size=600), st.integers(min_value=0, max_value=2**64))
def test_random_bytes_only_raise_input_errors(prefix: bytes, file_size: int) -> None:
    parse_or_refuse(prefix, file_size)


@FUZZ
@given(st.binary(max_size=200))
def test_random_bytes_after_a_plausible_length(body: bytes) -> None:
    prefix = struct.pack("<Q", len(body)) + body
    parse_or_refuse(prefix, len(prefix))


@FUZZ
@given(valid_files())
def test_valid_headers_are_accepted_exactly(case: tuple[dict[str, Any], bytes]) -> None:
    header, data = case
    raw = encode(header, data)
    parsed = parse_header(raw, len(raw))
    tensors = {name: entry for name, entry in header.items() if name != "__metadata__"}
    assert set(parsed.tensors) == set(tensors)
    for name, entry in tensors.items():
        info = parsed.tensors[name]
        assert (info.dtype, list(info.shape)) == (entry["dtype"], entry["shape"])
        assert info.end - info.start == entry["data_offsets"][1] - entry["data_offsets"][0]


@FUZZ
@given(valid_files(), st.data())
def test_mutated_headers_only_raise_input_errors(case: tuple[dict[str, Any], bytes], data: st.DataObject) -> None:
    header, payload = case
    mutation = data.draw(st.sampled_from(["replace_field", "replace_entry", "add_entry", "metadata", "root", "length",
                                          "truncate", "size"]))
    length, file_size_delta, cut = None, 0, None
    names = [name for name in header if name != "__metadata__"]
    if mutation == "replace_field" and names:
        entry = header[data.draw(st.sampled_from(names))]
        entry[data.draw(st.sampled_from(["dtype", "shape", "data_offsets", "extra"]))] = data.draw(json_values)
    elif mutation == "replace_entry" and names:
        header[data.draw(st.sampled_from(names))] = data.draw(json_values)
    elif mutation == "add_entry":
        header[data.draw(st.text(max_size=8))] = data.draw(json_values)
    elif mutation == "metadata":
        header["__metadata__"] = data.draw(json_values)
    elif mutation == "root":
        header = data.draw(json_values)
    elif mutation == "length":
        length = data.draw(st.integers(min_value=0, max_value=2**64 - 1))
    elif mutation == "truncate":
        cut = data.draw(st.integers(min_value=0, max_value=64))
    else:
        file_size_delta = data.draw(st.integers(min_value=-64, max_value=64))
    raw = encode(header, payload, length)
    if cut is not None:
        raw = raw[: max(len(raw) - cut, 0)]
    parse_or_refuse(raw, max(len(raw) + file_size_delta, 0))


@FUZZ
@given(valid_files(), st.data())
def test_flipped_bytes_only_raise_input_errors(case: tuple[dict[str, Any], bytes], data: st.DataObject) -> None:
    raw = bytearray(encode(*case))
    for _ in range(data.draw(st.integers(1, 4))):
        position = data.draw(st.integers(0, len(raw) - 1))
        raw[position] = data.draw(st.integers(0, 255))
    parse_or_refuse(bytes(raw), len(raw))


def test_regressions_found_by_fuzzing() -> None:
    """An unhashable dtype and an integer past Python's digit limit once escaped as TypeError / ValueError."""
    for header in ({"t": {"dtype": [], "shape": [], "data_offsets": [0, 0]}},
                   {"t": {"dtype": "F32", "shape": [], "data_offsets": [0, 0]}, "n": 1}):
        raw = encode(header, b"").replace(b'"n": 1', b'"n": ' + b"9" * 5000)
        assert parse_or_refuse(raw, len(raw)) is None
