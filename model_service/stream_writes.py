"""What the publisher queues and the Lua scripts that write a batch of it to Redis in one round trip.

Two kinds of queued item:

- a :data:`StreamEntry`, ``(stream, fields)``: any event (feedback, and
  everything replayed from a spill file);
- a :class:`PredictionBlock`: the predictions of one scoring call, queued as
  the arrays the model produced. The request only appends a reference; the
  writer encodes a whole batch of blocks at once, as a few packed columns
  that Redis splits into entries.

Why: with one request per connection the server's CPU is the limit, and
every microsecond of per-event Python in the request or the writer shows as
lost throughput. redis-py's asyncio client packs each argument in Python
(~6 us per event of 17 arguments), and the request built eight fields per
event (~1.3 us). The writer's CPU per event: 8.1 us with an argument per
field, 1.5 us with one MessagePack argument. Publishing in all, measured
in-process against a real redis-server: 3.5 us per event with MessagePack
entries, 2.2 us with blocks (``benchmarks/RESULTS.md``).

Both scripts (``write_entries.lua``, ``write_predictions.lua`` beside this
module) set the batch's marker key first (``SET NX PX``) and write only if it
was new, so a retried batch lands once (see ``model_service.publisher``).
Before that they check that every stream key holds a stream (or nothing): an
XADD failing after the marker (WRONGTYPE) would leave the marker set with
nothing written, and the retry would be skipped as a duplicate.
Both write the same stream entries, field for field, as
:func:`shared.events.encode_predictions` describes them (a test checks it);
the id width and the field names are passed to the Lua from Python.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from itertools import chain

import msgpack
import numpy as np
import numpy.typing as npt

from model_service.spill import StreamEntry
from shared.events import FLOAT, PREDICTION_FIELDS, SCHEMA_VERSION, encode_predictions, timestamp_texts
from shared.ids import ID_LENGTH


@dataclass(frozen=True, slots=True)
class BlockHeader:
    """What every prediction of one served model shares.

    Made once per model: the writer groups blocks whose headers are the same
    object (or equal), so a request never builds or compares these fields.
    """

    stream: str
    model: str
    version: str


@dataclass(slots=True)
class PredictionBlock:
    """The predictions of one scoring call, one stream entry per row once written.

    Not frozen (a frozen dataclass costs ~1 us more to build, per request);
    neither it nor its arrays may change once queued (the model service hands
    over fresh arrays per call).
    """

    header: BlockHeader
    ids: Sequence[str]
    # One instant for the block (a scoring call), or one per row (events logged from elsewhere).
    timestamp_ms: int | npt.NDArray[np.int64]
    features: npt.NDArray[np.float32]  # (n, F)
    classes: npt.NDArray[np.integer]  # (n,)
    probabilities: npt.NDArray[np.float32]  # (n, K); (n, 0) for a model without probabilities

    def __len__(self) -> int:
        return len(self.ids)

    def joins(self, other: PredictionBlock) -> bool:
        """Whether one script call can write both (same stream and model, same widths)."""
        return (other.header is self.header or other.header == self.header) and (
            other.features.shape[1] == self.features.shape[1]
            and other.probabilities.shape[1] == self.probabilities.shape[1]
        )

    def head(self, rows: int) -> PredictionBlock:
        """The first ``rows`` rows (what fits in a full queue)."""
        stamps = self.timestamp_ms[:rows] if isinstance(self.timestamp_ms, np.ndarray) else self.timestamp_ms
        return PredictionBlock(self.header, self.ids[:rows], stamps,
                               self.features[:rows], self.classes[:rows], self.probabilities[:rows])

    def entries(self) -> list[StreamEntry]:
        """The same events as generic entries: for the spill file and its replay."""
        h = self.header
        fields = encode_predictions(self.ids, self.timestamp_ms, h.model, h.version,
                                    self.features, self.classes, self.probabilities)
        return [(h.stream, f) for f in fields]


def entries_script_args(entries: Sequence[StreamEntry]) -> tuple[list[str], bytes]:
    """The streams (KEYS from index 2) and the packed entries for ``write_entries.lua``.

    One MessagePack argument, unpacked by Redis's own ``cmsgpack``: redis-py's
    asyncio client packs each argument in Python (~6 us per entry of 17
    arguments here), msgpack packs the lot in C (~0.7 us per entry). Raw
    strings (``use_bin_type=False``), because ``cmsgpack`` does not read the
    bin types.
    """
    streams: dict[str, int] = {}
    rows = [
        [streams.setdefault(stream, len(streams) + 2), *chain.from_iterable(fields.items())]
        for stream, fields in entries
    ]
    return list(streams), msgpack.packb(rows, use_bin_type=False)


def predictions_script_args(blocks: Sequence[PredictionBlock]) -> list[bytes | int]:
    """ARGV (after TTL and MAXLEN) for ``write_predictions.lua``: blocks that all join the first."""
    first = blocks[0]
    n = sum(len(b) for b in blocks)
    if len(blocks) == 1:
        features, probabilities, classes = first.features, first.probabilities, first.classes
    else:
        features = np.concatenate([b.features for b in blocks])
        probabilities = np.concatenate([b.probabilities for b in blocks])
        classes = np.concatenate([b.classes for b in blocks])
    ids = "".join(chain.from_iterable(b.ids for b in blocks)).encode()
    if len(ids) != n * ID_LENGTH:
        raise ValueError(f"prediction ids must be {ID_LENGTH} characters each")
    timestamps = b",".join(b",".join(timestamp_texts(b.timestamp_ms, len(b))) for b in blocks)
    return [
        n,
        first.features.shape[1] * FLOAT.itemsize,
        first.probabilities.shape[1] * FLOAT.itemsize,
        SCHEMA_VERSION,
        first.header.model.encode(),
        first.header.version.encode(),
        ids,
        timestamps,
        ",".join(map(str, classes.tolist())).encode(),
        np.ascontiguousarray(features, dtype=FLOAT).tobytes(),
        np.ascontiguousarray(probabilities, dtype=FLOAT).tobytes(),
        ID_LENGTH,
        b",".join(PREDICTION_FIELDS),
    ]
