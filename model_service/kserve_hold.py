"""KServe halves held in this process while Redis is away, bounded by their bytes.

KServe's inference logger sends each half once and never again, whatever
the answer: a half refused while Redis is down is lost. So while the pairing
script cannot be reached a half waits here instead, under the same pending
key it would have in Redis (:mod:`model_service.kserve_pairing`). The other
half of the same inference, if it comes to this process during the outage,
takes it and the pair is published at once (into the publisher's queue and
spill, like every event); a half still here when Redis answers again is
handed to the pairing script then, so a pair whose halves lie on both sides
of the outage, or on two replicas, still meets in Redis.

Bounded: a half that would pass ``max_bytes`` is refused (the caller answers
503 and counts it), never silently dropped.

Shutdown: halves still held go to a spill file of their own (one record,
:func:`as_entries`), read back at the next start (:func:`from_entries`) and
handed to Redis once it answers. A SIGKILLed process loses what it held, as
the publisher loses what is in its queue.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator
from dataclasses import dataclass

from model_service.registered_models import IngestSchema
from model_service.spill import StreamEntry
from shared.model_metadata import ModelMetadata

# A held half's bookkeeping (dict slot, dataclass, strings) beside its bytes.
_OVERHEAD_BYTES = 200


@dataclass(frozen=True, slots=True)
class HeldHalf:
    """One half as the pairing script would store it, with what pairing it later needs."""

    key: str  # its pending key (Keys.kserve_pending)
    kind: str  # "q" request, "s" response
    half: bytes  # encoded arrays (kserve_pairing._encode_half)
    event_id: str  # the inference's ce-id: names the rows of the pair
    schema: IngestSchema  # the model version it was read for

    @property
    def size(self) -> int:
        return len(self.key) + len(self.half) + len(self.event_id) + _OVERHEAD_BYTES


class HeldHalves:
    """Pending key -> the half waiting for its other, in arrival order."""

    def __init__(self, max_bytes: int) -> None:
        self.max_bytes = max_bytes
        self._halves: dict[str, HeldHalf] = {}
        self.bytes = 0

    def __len__(self) -> int:
        return len(self._halves)

    def get(self, key: str) -> HeldHalf | None:
        return self._halves.get(key)

    def has_room(self, half: HeldHalf) -> bool:
        return self.bytes + half.size <= self.max_bytes

    def put(self, half: HeldHalf) -> None:
        """Hold ``half`` (the caller checked :meth:`has_room` and that its key is free)."""
        self._halves[half.key] = half
        self.bytes += half.size

    def pop(self, key: str) -> HeldHalf | None:
        half = self._halves.pop(key, None)
        if half is not None:
            self.bytes -= half.size
        return half

    def __iter__(self) -> Iterator[HeldHalf]:
        return iter(list(self._halves.values()))


def as_entries(halves: Iterable[HeldHalf]) -> list[StreamEntry]:
    """Held halves as spill-file entries: the pending key for the stream, the rest as fields
    (the model version's metadata too: the next start may not reach Redis to look it up)."""
    return [
        (h.key, {b"k": h.kind.encode(), b"h": h.half, b"i": h.event_id.encode(),
                 b"m": h.schema.metadata.model_dump_json().encode()})
        for h in halves
    ]  # fmt: skip


def from_entries(entries: Iterable[StreamEntry]) -> list[HeldHalf]:
    """The halves :func:`as_entries` wrote (one schema object per model version, as the ingest path has)."""
    schemas: dict[bytes, IngestSchema] = {}
    halves: list[HeldHalf] = []
    for key, fields in entries:
        raw = fields[b"m"]
        schema = schemas.get(raw)
        if schema is None:
            schema = schemas[raw] = IngestSchema(ModelMetadata.model_validate_json(raw))
        halves.append(HeldHalf(key, fields[b"k"].decode(), fields[b"h"], fields[b"i"].decode(), schema))
    return halves
