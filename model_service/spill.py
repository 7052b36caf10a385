"""The publisher's spill file: batches of stream entries kept on local disk while Redis is away.

An append-only file of length-prefixed records, one per batch::

    record  = <u32 payload length> <u32 crc32(payload)> payload
    payload = <16-byte batch id> <u32 entries> entry*
    entry   = <u16 stream length> stream <u16 fields> (<u32 len> key <u32 len> value)*

Batches are appended in the order they left memory and replayed in that order
from a read cursor; the file is truncated only when every record in it has
been replayed. The batch id travels with the batch, so a replay of a batch
that had in fact reached Redis (the connection dropped after ``EXEC``, or the
process died between the write and moving the cursor) is recognised by Redis
and skipped (see ``model_service.publisher``).

A torn record at the end (the process died mid-append) fails its length or
CRC check when the file is opened and is cut off. With ``fsync="batch"`` an
append returns only once the batch is on disk, so only a batch whose append
never returned can be lost that way; with ``"never"`` the OS decides.

The file is locked (``flock``) by the process that appends to it, so two
processes never interleave records; a process that finds the usual file
locked uses one named after its pid, and any unlocked spill file of the same
name left by a dead process is replayed first (:func:`open_spill_files`).
"""

from __future__ import annotations

import contextlib
import fcntl
import logging
import os
import struct
import threading
import zlib
from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import Literal

log = logging.getLogger(__name__)

StreamEntry = tuple[str, dict[bytes, bytes]]
FsyncPolicy = Literal["batch", "never"]

_HEADER = struct.Struct("<II")
_BATCH = struct.Struct("<16sI")
_U16 = struct.Struct("<H")
_U32 = struct.Struct("<I")
SUFFIX = ".spill"


class SpillLockedError(OSError):
    """Another live process appends to this spill file."""


class SpillCorruptError(ValueError):
    """A record failed its checks in the middle of the file."""


def encode_batch(batch_id: bytes, entries: Sequence[StreamEntry]) -> bytes:
    parts: list[bytes] = [_BATCH.pack(batch_id, len(entries))]
    for stream, fields in entries:
        name = stream.encode()
        parts.append(_U16.pack(len(name)))
        parts.append(name)
        parts.append(_U16.pack(len(fields)))
        for key, value in fields.items():
            parts.append(_U32.pack(len(key)))
            parts.append(key)
            parts.append(_U32.pack(len(value)))
            parts.append(value)
    payload = b"".join(parts)
    return _HEADER.pack(len(payload), zlib.crc32(payload)) + payload


def decode_batch(payload: bytes) -> tuple[bytes, list[StreamEntry]]:
    batch_id, n = _BATCH.unpack_from(payload, 0)
    pos = _BATCH.size
    entries: list[StreamEntry] = []
    for _ in range(n):
        (size,) = _U16.unpack_from(payload, pos)
        pos += 2
        stream = payload[pos : pos + size].decode()
        pos += size
        (n_fields,) = _U16.unpack_from(payload, pos)
        pos += 2
        fields: dict[bytes, bytes] = {}
        for _ in range(n_fields):
            (size,) = _U32.unpack_from(payload, pos)
            pos += 4
            key = payload[pos : pos + size]
            pos += size
            (size,) = _U32.unpack_from(payload, pos)
            pos += 4
            fields[key] = payload[pos : pos + size]
            pos += size
        entries.append((stream, fields))
    return batch_id, entries


class SpillFile:
    """One locked spill file: append at the end, replay from a cursor.

    All methods are synchronous and thread-safe (the publisher runs appends in
    a worker thread so an ``fsync`` never blocks the event loop).
    """

    def __init__(self, path: Path, *, max_bytes: int, fsync: FsyncPolicy = "batch") -> None:
        self.path = path
        self.max_bytes = max_bytes
        self.fsync = fsync
        self._lock = threading.Lock()
        path.parent.mkdir(parents=True, exist_ok=True)
        self._fd = os.open(path, os.O_RDWR | os.O_CREAT | os.O_APPEND, 0o600)
        try:
            fcntl.flock(self._fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError as exc:
            os.close(self._fd)
            raise SpillLockedError(f"spill file {path} is in use by another process") from exc
        self._read_offset = 0
        self._size = 0
        self.pending_events = 0
        self.pending_batches = 0
        self._recover()

    # -- opening ----------------------------------------------------------------
    def _recover(self) -> None:
        """Count the complete records and cut a torn tail left by a crash mid-append."""
        size = os.fstat(self._fd).st_size
        good = 0
        for record_end in self._scan(size):
            good = record_end
        if good != size:
            log.warning("spill file %s: cutting %d bytes of a torn record at the end", self.path, size - good)
            os.ftruncate(self._fd, good)
        self._size = good
        if self.pending_events:
            log.warning(
                "spill file %s holds %d events in %d batches from an earlier run: replaying them first",
                self.path, self.pending_events, self.pending_batches,
            )  # fmt: skip

    def _scan(self, size: int) -> Iterator[int]:
        offset = 0
        while offset + _HEADER.size + _BATCH.size <= size:
            length, crc = _HEADER.unpack(os.pread(self._fd, _HEADER.size, offset))
            end = offset + _HEADER.size + length
            if end > size:
                return
            payload = os.pread(self._fd, length, offset + _HEADER.size)
            if zlib.crc32(payload) != crc:
                return
            _, n = _BATCH.unpack_from(payload, 0)
            self.pending_events += n
            self.pending_batches += 1
            yield end
            offset = end

    # -- state --------------------------------------------------------------------
    @property
    def size_bytes(self) -> int:
        return self._size

    @property
    def has_pending(self) -> bool:
        return self._read_offset < self._size

    # -- writing ------------------------------------------------------------------
    def append(self, record: bytes, n_events: int) -> bool:
        """Append one encoded batch (:func:`encode_batch`); False if it would pass ``max_bytes``."""
        with self._lock:
            if self._size + len(record) > self.max_bytes:
                return False
            written = 0
            while written < len(record):
                written += os.write(self._fd, record[written:])
            if self.fsync == "batch":
                os.fsync(self._fd)
            self._size += len(record)
            self.pending_events += n_events
            self.pending_batches += 1
            return True

    # -- replaying ----------------------------------------------------------------
    def peek(self) -> tuple[bytes, list[StreamEntry], int] | None:
        """The oldest batch not replayed yet and the cursor after it, or None."""
        with self._lock:
            if self._read_offset >= self._size:
                return None
            return self._record_at(self._read_offset)

    def _record_at(self, offset: int) -> tuple[bytes, list[StreamEntry], int]:
        length, crc = _HEADER.unpack(os.pread(self._fd, _HEADER.size, offset))
        payload = os.pread(self._fd, length, offset + _HEADER.size)
        if len(payload) != length or zlib.crc32(payload) != crc:
            raise SpillCorruptError(f"spill file {self.path}: bad record at offset {offset}")
        batch_id, entries = decode_batch(payload)
        return batch_id, entries, offset + _HEADER.size + length

    def advance(self, next_offset: int, n_events: int) -> None:
        """The batch before ``next_offset`` is in Redis; truncate once all of them are."""
        with self._lock:
            self._read_offset = next_offset
            self.pending_events -= n_events
            self.pending_batches -= 1
            if self._read_offset >= self._size:
                os.ftruncate(self._fd, 0)
                if self.fsync == "batch":
                    os.fsync(self._fd)
                self._read_offset = self._size = 0
                self.pending_events = self.pending_batches = 0

    def clear(self) -> None:
        """Forget every batch in the file (its reader has taken them over)."""
        with self._lock:
            os.ftruncate(self._fd, 0)
            self._read_offset = self._size = 0
            self.pending_events = self.pending_batches = 0

    def read_all(self) -> list[StreamEntry]:
        """Every entry of every batch not replayed yet, oldest first (the cursor does not move)."""
        entries: list[StreamEntry] = []
        with self._lock:
            offset = self._read_offset
            while offset < self._size:
                _, batch, offset = self._record_at(offset)
                entries += batch
        return entries

    def skip_corrupt(self) -> None:
        """Give up on the rest of a file whose middle is unreadable (disk fault)."""
        with self._lock:
            log.error("spill file %s: dropping %d unreadable bytes", self.path, self._size - self._read_offset)
            os.ftruncate(self._fd, 0)
            self._read_offset = self._size = 0
            self.pending_events = self.pending_batches = 0

    def close(self, *, remove_if_empty: bool = False) -> None:
        with self._lock:
            if self._fd < 0:
                return
            if remove_if_empty and self._size == 0:
                with contextlib.suppress(OSError):
                    self.path.unlink()
            os.close(self._fd)  # releases the flock
            self._fd = -1


def open_spill_files(
    directory: Path, name: str, *, max_bytes: int, fsync: FsyncPolicy = "batch"
) -> tuple[SpillFile, list[SpillFile]]:
    """This process's spill file, and the unlocked files of the same ``name`` left by dead processes.

    The usual file is ``<directory>/<name>.spill``; if a live process holds it
    (several workers on one directory), this one uses ``<name>.<pid>.spill``.
    """
    try:
        own = SpillFile(directory / f"{name}{SUFFIX}", max_bytes=max_bytes, fsync=fsync)
    except SpillLockedError:
        own = SpillFile(directory / f"{name}.{os.getpid()}{SUFFIX}", max_bytes=max_bytes, fsync=fsync)
    orphans: list[SpillFile] = []
    for path in sorted(directory.glob(f"{name}.*{SUFFIX}"), key=lambda p: p.stat().st_mtime):
        if path == own.path:
            continue
        try:
            orphan = SpillFile(path, max_bytes=max_bytes, fsync=fsync)
        except SpillLockedError:
            continue  # a live sibling's file
        if orphan.has_pending:
            orphans.append(orphan)
        else:
            orphan.close(remove_if_empty=True)
    return own, orphans
