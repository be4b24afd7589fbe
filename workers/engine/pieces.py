"""How a file is cut into pieces for swarms: the one rule both torrents and Metalinks follow."""

from __future__ import annotations

import hashlib
from pathlib import Path

MIN_PIECE = 64 * 1024
MAX_PIECE = 16 * 1024**2
TARGET_PIECES = 1500


def piece_length(size: int) -> int:
    """A power of two (BEP 52 requires one, at least 16 KiB) giving at most about 1500 pieces, 64 KiB to 16 MiB."""
    length = MIN_PIECE
    while length < MAX_PIECE and size > length * TARGET_PIECES:
        length *= 2
    return length


def piece_sha256(path: Path, length: int) -> list[str]:
    """The sha-256 of each `length`-byte piece of a file (the last one may be shorter)."""
    with open(path, "rb") as handle:
        return [hashlib.sha256(block).hexdigest() for block in iter(lambda: handle.read(length), b"")]
