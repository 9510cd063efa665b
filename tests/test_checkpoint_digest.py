"""The SHA-256 digest in a checkpoint's zip comment: written once, checked before every load."""

from __future__ import annotations

import hashlib
import logging
import zipfile
from pathlib import Path

import pytest
import torch

from hieros_pl.callbacks.checkpoint import load_checkpoint
from hieros_pl.checkpoint_digest import COMMENT_SIZE, DigestError, recorded_digest, sign, verify
from hieros_pl.errors import CheckpointError


def largest_entry(path: Path) -> tuple[int, int]:
    """(offset, size) in ``path`` of the largest zip entry's data: a tensor's storage."""
    with zipfile.ZipFile(path) as archive:
        entry = max(archive.infolist(), key=lambda info: info.file_size)
    with open(path, "rb") as handle:
        handle.seek(entry.header_offset + 26)  # local header: name and extra-field lengths
        name_size, extra_size = (int.from_bytes(handle.read(2), "little") for _ in range(2))
    return entry.header_offset + 30 + name_size + extra_size, entry.file_size


def flip_bytes(path: Path, offset: int, count: int = 4) -> None:
    """Invert ``count`` bytes of ``path`` from ``offset`` on, in place."""
    with open(path, "r+b") as handle:
        handle.seek(offset)
        original = handle.read(count)
        handle.seek(offset)
        handle.write(bytes(byte ^ 0xFF for byte in original))


def flip_mid_storage(path: Path) -> None:
    """Corrupt the middle of the largest tensor's storage, leaving the zip directory intact."""
    offset, size = largest_entry(path)
    flip_bytes(path, offset + size // 2)


def _checkpoint(path: Path, env_steps: int = 5) -> Path:
    weights = torch.linspace(0.0, 1.0, 4096)
    torch.save({"state_dict": {"env_steps": torch.tensor(env_steps), "w": weights}}, path)
    return path


def test_a_signed_checkpoint_verifies_and_still_loads_with_torch(tmp_path: Path) -> None:
    path = _checkpoint(tmp_path / "last.ckpt")
    unsigned = path.read_bytes()
    digest = sign(path)
    assert digest == hashlib.sha256(unsigned).hexdigest() == recorded_digest(path)
    assert path.stat().st_size == len(unsigned) + COMMENT_SIZE
    assert verify(path)
    for mmap in (False, True):
        state = torch.load(path, weights_only=True, mmap=mmap)
        assert torch.equal(state["state_dict"]["w"], torch.linspace(0.0, 1.0, 4096))
    assert zipfile.ZipFile(path).testzip() is None


def test_bytes_flipped_mid_tensor_load_as_garbage_but_fail_the_digest(tmp_path: Path) -> None:
    path = _checkpoint(tmp_path / "last.ckpt")
    sign(path)
    flip_mid_storage(path)
    garbage = torch.load(path, weights_only=True)["state_dict"]["w"]  # torch does not notice
    assert not torch.equal(garbage, torch.linspace(0.0, 1.0, 4096))
    with pytest.raises(DigestError, match="do not match the SHA-256 digest"):
        verify(path)
    with pytest.raises(CheckpointError, match=rf"checkpoint {path} is truncated or corrupt \(its"):
        load_checkpoint(path)


@pytest.mark.parametrize("where", ["first byte", "central directory", "digest"])
def test_a_flipped_byte_anywhere_in_the_file_is_caught(tmp_path: Path, where: str) -> None:
    path = _checkpoint(tmp_path / "last.ckpt")
    sign(path)
    size = path.stat().st_size
    offsets = {"first byte": 0, "central directory": size - COMMENT_SIZE - 60, "digest": size - 5}
    flip_bytes(path, offsets[where], count=1)
    with pytest.raises(DigestError):
        verify(path)


def test_a_truncated_signed_checkpoint_is_corrupt(tmp_path: Path) -> None:
    path = _checkpoint(tmp_path / "last.ckpt")
    sign(path)
    path.write_bytes(path.read_bytes()[:-30])
    with pytest.raises(DigestError, match="cut short"):
        verify(path)


def test_an_unsigned_checkpoint_loads_after_a_warning(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    path = _checkpoint(tmp_path / "last.ckpt", env_steps=9)
    assert recorded_digest(path) is None and not verify(path)
    with caplog.at_level(logging.WARNING):
        assert int(load_checkpoint(path)["state_dict"]["env_steps"]) == 9
    assert f"checkpoint {path} carries no SHA-256 digest" in caplog.text


def test_signing_refuses_a_file_that_is_not_a_fresh_archive(tmp_path: Path) -> None:
    path = _checkpoint(tmp_path / "last.ckpt")
    sign(path)
    with pytest.raises(DigestError, match="comment-less zip end record"):
        sign(path)  # already signed
