"""extract_upload on real archives built here: what it unpacks, and that a refused archive leaves nothing behind."""

from __future__ import annotations

import io
import tarfile
import tempfile
import zipfile
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from workers.engine.archive import ArchiveLimits, extract_upload
from workers.engine.errors import EngineInputError


def make_zip(path: Path, members: dict[str, bytes]) -> Path:
    with zipfile.ZipFile(path, "w", zipfile.ZIP_DEFLATED) as handle:
        for name, data in members.items():
            handle.writestr(name, data)
    return path


def make_tar(path: Path, members: dict[str, bytes], mode: str = "w:gz") -> Path:
    with tarfile.open(path, mode) as handle:
        for name, data in members.items():
            info = tarfile.TarInfo(name)
            info.size = len(data)
            handle.addfile(info, io.BytesIO(data))
    return path


def unpacked(dest: Path) -> dict[str, bytes]:
    return {path.relative_to(dest).as_posix(): path.read_bytes() for path in sorted(dest.rglob("*")) if path.is_file()}


def refuse(archive: Path, dest: Path, **kwargs: object) -> EngineInputError:
    """Extract, expect a refusal, and check that nothing was left beside the archive."""
    before = set(dest.parent.iterdir())
    with pytest.raises(EngineInputError) as info:
        extract_upload(archive, dest, **kwargs)
    assert set(dest.parent.iterdir()) == before, "partial output was left behind"
    return info.value


FILES = {"adapter_config.json": b"{}", "adapter_model.safetensors": b"\0" * 64, "README.md": b"# hi\n"}


@pytest.mark.parametrize("suffix", [".zip", ".tar.gz", ".tgz", ".tar"])
def test_a_wrapping_folder_is_stripped(suffix: str, tmp_path: Path) -> None:
    members = {f"my-adapter/{name}": data for name, data in FILES.items()}
    archive = tmp_path / f"upload{suffix}"
    make_zip(archive, members) if suffix == ".zip" else make_tar(archive, members, "w" if suffix == ".tar" else "w:gz")

    files = extract_upload(archive, tmp_path / "out")

    assert unpacked(tmp_path / "out") == FILES
    assert files == sorted(tmp_path / "out" / name for name in FILES)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["out", f"upload{suffix}"]  # no staging folder left


def test_nested_folders_are_kept_when_nothing_wraps_everything(tmp_path: Path) -> None:
    archive = make_zip(tmp_path / "u.zip", {"a/b.txt": b"b", "./c.txt": b"c", "d/": b""})
    extract_upload(archive, tmp_path / "out")
    assert unpacked(tmp_path / "out") == {"a/b.txt": b"b", "c.txt": b"c"}
    assert (tmp_path / "out" / "d").is_dir()


def test_finder_metadata_is_skipped(tmp_path: Path) -> None:
    archive = make_zip(tmp_path / "u.zip", {"x/README.md": b"r", "__MACOSX/x/._README.md": b"junk", "x/.DS_Store": b"junk"})
    extract_upload(archive, tmp_path / "out")
    assert unpacked(tmp_path / "out") == {"README.md": b"r"}


def test_allowed_names_are_glob_patterns(tmp_path: Path) -> None:
    archive = make_zip(tmp_path / "u.zip", {"train.jsonl": b"{}", "README.md": b"r"})
    extract_upload(archive, tmp_path / "ok", allowed_names=["*.jsonl", "README.md"])

    error = refuse(archive, tmp_path / "no", allowed_names=["*.csv"])
    assert error.field == "README.md" and "expected only *.csv" in str(error) and error.code == "archive_name"


def test_an_empty_destination_folder_is_filled_but_a_full_one_is_refused(tmp_path: Path) -> None:
    archive = make_zip(tmp_path / "u.zip", {"a.txt": b"a"})
    (tmp_path / "empty").mkdir()
    extract_upload(archive, tmp_path / "empty")
    assert unpacked(tmp_path / "empty") == {"a.txt": b"a"}
    with pytest.raises(FileExistsError):
        extract_upload(archive, tmp_path / "empty")


@pytest.mark.parametrize(("members", "limits", "code", "fragment"), [
    ({f"{i}.txt": b"x" for i in range(5)}, ArchiveLimits(max_files=4), "too_many_files", "more than 4 entries"),
    ({"a.bin": b"x" * 600, "b.bin": b"y" * 600}, ArchiveLimits(max_total_bytes=1000), "too_large", "1000 bytes in all"),
    ({"a.bin": b"x" * 2000}, ArchiveLimits(max_file_bytes=1000), "too_large", "limit for one file"),
    ({"z.bin": bytes(200_000)}, ArchiveLimits(ratio_grace_bytes=1000), "ratio", "zip bomb"),
    ({"a": b"file", "a/b": b"inside a file"}, ArchiveLimits(), "archive_name", "also holds as a file"),
    ({"a/": b"", "a/../../x": b"x"}, ArchiveLimits(), "archive_path", "climbs out"),
    ({"C:/Windows/x": b"x"}, ArchiveLimits(), "archive_path", "absolute path"),
    ({"bad\nname": b"x"}, ArchiveLimits(), "archive_name", "control characters"),
    ({"x" * 300: b"x"}, ArchiveLimits(), "archive_name", "255 bytes"),
    ({"empty/": b""}, ArchiveLimits(), "archive_empty", "holds no files"),
])
def test_limits_and_names(members: dict[str, bytes], limits: ArchiveLimits, code: str, fragment: str,
                          tmp_path: Path) -> None:
    error = refuse(make_zip(tmp_path / "u.zip", members), tmp_path / "out", limits=limits)
    assert error.code == code and fragment in str(error) and error.file == "u.zip"


def test_small_compressible_files_are_within_the_ratio_grace(tmp_path: Path) -> None:
    archive = make_zip(tmp_path / "u.zip", {"zeros.bin": bytes(500_000)})  # a ratio near 500, but only 500 kB
    extract_upload(archive, tmp_path / "out")
    assert (tmp_path / "out" / "zeros.bin").stat().st_size == 500_000


def test_a_truncated_archive_is_corrupt(tmp_path: Path) -> None:
    good = make_tar(tmp_path / "good.tar.gz", {"a.bin": bytes(range(256)) * 400})
    archive = tmp_path / "cut.tar.gz"
    archive.write_bytes(good.read_bytes()[: good.stat().st_size // 2])

    error = refuse(archive, tmp_path / "out")

    assert error.code == "archive_corrupt"


def test_a_zip_that_fails_late_leaves_nothing(tmp_path: Path) -> None:
    """The first members are fine and written; a later one is hostile: all of it is removed."""
    archive = make_zip(tmp_path / "u.zip", {"ok1.txt": b"1", "ok2.txt": b"2", "../evil": b"x"})
    refuse(archive, tmp_path / "out")
    assert not (tmp_path / "out").exists()


def test_an_unknown_suffix_is_refused(tmp_path: Path) -> None:
    path = tmp_path / "upload.7z"
    path.write_bytes(b"7z")
    assert refuse(path, tmp_path / "out").code == "archive_format"


@settings(max_examples=150, deadline=None)
@given(st.sampled_from([".zip", ".tar.gz", ".tar"]), st.data())
def test_damaged_archives_only_raise_input_errors(suffix: str, data: st.DataObject) -> None:
    with tempfile.TemporaryDirectory() as tmp:
        folder = Path(tmp)
        archive = folder / f"u{suffix}"
        members = {"a/adapter_config.json": b'{"r": 4}', "a/README.md": b"# card\n" * 20}
        make_zip(archive, members) if suffix == ".zip" else make_tar(archive, members, "w" if suffix == ".tar" else "w:gz")
        raw = bytearray(archive.read_bytes())
        for _ in range(data.draw(st.integers(1, 6))):
            raw[data.draw(st.integers(0, len(raw) - 1))] = data.draw(st.integers(0, 255))
        archive.write_bytes(bytes(raw[: data.draw(st.integers(1, len(raw)))]))
        try:
            extract_upload(archive, folder / "out")
        except EngineInputError:
            assert sorted(p.name for p in folder.iterdir()) == [archive.name]
