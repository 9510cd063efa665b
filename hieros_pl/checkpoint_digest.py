"""A SHA-256 digest inside every checkpoint file, checked before the file is loaded.

``torch.load`` checks no checksum: bytes flipped inside a tensor's storage load as garbage
weights. A checkpoint is the zip archive that ``torch.save`` writes; :func:`sign` stores the
SHA-256 of that archive in the zip's archive comment, the last bytes of the file, which every zip
reader (torch's too) skips. Checkpoint and digest are thus one file, renamed into place together:
no instant exists at which a good checkpoint and its digest disagree.

    torch.save:  [entries][central directory][end record: ... comment length = 0]
    signed:      [entries][central directory][end record: ... comment length = 81][comment]
    comment:     b"hieros-pl sha256 " + 64 lower-case hex digits

The digest is that of the archive as ``torch.save`` wrote it (comment length 0), so it covers
every byte of the file but the comment and its length. A file that ends with a comment-less end
record is unsigned (written before checkpoints carried a digest); any other ending is corrupt.
"""

from __future__ import annotations

import hashlib
from pathlib import Path

END_RECORD_SIGNATURE = b"PK\x05\x06"
END_RECORD_SIZE = 22
"""Bytes of the zip end-of-central-directory record without its comment; the last two hold the
comment length (little-endian)."""
COMMENT_PREFIX = b"hieros-pl sha256 "
COMMENT_SIZE = len(COMMENT_PREFIX) + 64
HEX_DIGITS = frozenset(b"0123456789abcdef")
READ_SIZE = 1 << 20


class DigestError(ValueError):
    """A checkpoint's bytes do not match its recorded digest, or its ending is not a zip's."""


def sign(path: Path) -> str:
    """Append the SHA-256 of the archive at ``path`` (as torch.save wrote it) as its comment.

    Returns the hex digest. Raises DigestError if the file does not end with a comment-less end
    record (not a fresh ``torch.save`` archive).
    """
    size = path.stat().st_size
    if not _is_end_record(_tail(path, END_RECORD_SIZE), comment_size=0):
        raise DigestError(f"{path} does not end with a comment-less zip end record")
    digest = _archive_digest(path, size)
    with open(path, "r+b") as handle:
        handle.seek(size - 2)
        handle.write(COMMENT_SIZE.to_bytes(2, "little") + COMMENT_PREFIX + digest.encode())
    return digest


def recorded_digest(path: Path) -> str | None:
    """The hex digest stored in ``path``; None for an unsigned checkpoint.

    Raises DigestError if the file ends neither as an unsigned nor as a signed archive (cut
    short, or its last bytes overwritten).
    """
    tail = _tail(path, END_RECORD_SIZE + COMMENT_SIZE)
    if _is_end_record(tail[-END_RECORD_SIZE:], comment_size=0):
        return None
    comment = tail[END_RECORD_SIZE:]
    digest = comment[len(COMMENT_PREFIX) :]
    if (
        len(tail) == END_RECORD_SIZE + COMMENT_SIZE
        and _is_end_record(tail[:END_RECORD_SIZE], comment_size=COMMENT_SIZE)
        and comment.startswith(COMMENT_PREFIX)
        and set(digest) <= HEX_DIGITS
    ):
        return digest.decode("ascii")
    raise DigestError("it does not end with a zip end record: cut short or overwritten")


def verify(path: Path) -> bool:
    """Check ``path`` against its recorded digest: True if it matches, False if it has none.

    Raises DigestError on a mismatch (any byte of the archive changed since it was signed).
    """
    expected = recorded_digest(path)
    if expected is None:
        return False
    if _archive_digest(path, path.stat().st_size - COMMENT_SIZE) != expected:
        raise DigestError("its bytes do not match the SHA-256 digest recorded when it was written")
    return True


def _archive_digest(path: Path, archive_size: int) -> str:
    """SHA-256 of the first ``archive_size`` bytes of ``path`` with the comment length read as 0."""
    sha256 = hashlib.sha256()
    remaining = archive_size - 2
    with open(path, "rb") as handle:
        while remaining > 0:
            block = handle.read(min(READ_SIZE, remaining))
            if not block:
                raise DigestError("it is shorter than its zip records say")
            sha256.update(block)
            remaining -= len(block)
    sha256.update(b"\x00\x00")
    return sha256.hexdigest()


def _tail(path: Path, size: int) -> bytes:
    """The last ``size`` bytes of ``path`` (all of it if it is shorter)."""
    with open(path, "rb") as handle:
        handle.seek(max(0, path.stat().st_size - size))
        return handle.read()


def _is_end_record(record: bytes, comment_size: int) -> bool:
    return (
        len(record) == END_RECORD_SIZE
        and record.startswith(END_RECORD_SIGNATURE)
        and int.from_bytes(record[-2:], "little") == comment_size
    )
