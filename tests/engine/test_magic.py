"""Files named for what they are: real torch.save output, a safetensors header whose length reads like a pickle."""

from __future__ import annotations

import io
import json
import struct
from pathlib import Path

import pytest
import torch

from tests.engine.bad_uploads import BAD_UPLOADS, copy_upload, tiny_base_models
from workers.engine import magic
from workers.engine.errors import EngineInputError
from workers.engine.safetensors_io import read_header
from workers.engine.validation import ADAPTER_WEIGHTS, validate_adapter


def torch_saved(**options: object) -> bytes:
    buffer = io.BytesIO()
    torch.save({"base_model.model.x.lora_A.weight": torch.zeros(4, 8)}, buffer, **options)
    return buffer.getvalue()


@pytest.mark.parametrize(("options", "expected"), [({}, magic.TORCH_ZIP),
                                                   ({"_use_new_zipfile_serialization": False}, magic.PICKLE)])
def test_what_torch_save_writes_is_a_pickle_under_any_name(options: dict, expected: magic.FileFormat,
                                                           make_adapter, tiny_base: Path, tmp_path: Path) -> None:
    folder = copy_upload(tmp_path, make_adapter())
    (folder / ADAPTER_WEIGHTS).write_bytes(torch_saved(**options))
    assert magic.identify(magic.read_head(folder / ADAPTER_WEIGHTS)) is expected

    report = validate_adapter(folder, base_models=tiny_base_models(tiny_base))
    [pickles] = report.check("files.pickle")
    assert not pickles.passed and f"{ADAPTER_WEIGHTS} is {expected.name} despite its name" in pickles.message
    [header] = report.check("weights.header")
    assert header.message == f"{ADAPTER_WEIGHTS}: is {expected.name}, not safetensors: {magic.SAVE_SAFETENSORS}"


def test_a_header_whose_length_reads_like_a_pickle_is_still_safetensors(make_adapter, tiny_base: Path,
                                                                         tmp_path: Path) -> None:
    """A header of 640 bytes starts b"\\x80\\x02", pickle protocol 2's opening: the '{' after it decides."""
    folder = copy_upload(tmp_path, make_adapter())
    raw = (folder / ADAPTER_WEIGHTS).read_bytes()
    (length,) = struct.unpack("<Q", raw[:8])
    header, data = json.loads(raw[8 : 8 + length]), raw[8 + length :]
    encoded = json.dumps(header, separators=(",", ":")).encode()
    padded = next(size for size in (0x280, 0x380, 0x480, 0x580, 0x680) if size >= len(encoded))
    (folder / ADAPTER_WEIGHTS).write_bytes(struct.pack("<Q", padded) + encoded.ljust(padded) + data)
    assert (folder / ADAPTER_WEIGHTS).read_bytes()[:1] == b"\x80"

    assert magic.identify(magic.read_head(folder / ADAPTER_WEIGHTS)) is magic.SAFETENSORS
    assert set(read_header(folder / ADAPTER_WEIGHTS).tensors) == set(header) - {"__metadata__"}
    report = validate_adapter(folder, base_models=tiny_base_models(tiny_base))
    assert report.ok, [check.message for check in report.failures]


@pytest.mark.parametrize("bad", [bad for bad in BAD_UPLOADS if bad.name.startswith("header_of_")
                                 and "pickle" not in bad.name and "torch" not in bad.name], ids=lambda bad: bad.name)
def test_other_formats_are_not_called_pickles(bad, make_adapter, tiny_base: Path, tmp_path: Path) -> None:
    report = validate_adapter(bad.build(tmp_path, make_adapter()), base_models=tiny_base_models(tiny_base))
    assert report.check("files.pickle")[0].passed


def test_a_short_text_file_is_named_not_called_truncated(tmp_path: Path) -> None:
    (tmp_path / "model.safetensors").write_bytes(b"oops\n")
    with pytest.raises(EngineInputError) as caught:
        read_header(tmp_path / "model.safetensors")
    assert caught.value.code == "not_safetensors" and "is a text file, not safetensors" in str(caught.value)
