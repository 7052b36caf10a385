"""A bounded uniform sample of a reference read in chunks, the same whatever the chunk size.

Each row gets a random key from one seeded generator, drawn in file order; the
sample is the ``k`` rows with the smallest keys (bottom-k sampling: a uniform
sample without replacement). NumPy's generator gives the same doubles whether
they are drawn in one call or in many, so the rows kept depend on the seed and
the file, not on how it was cut into chunks. Memory: ``k`` rows.
"""

from __future__ import annotations

from collections.abc import Mapping

import numpy as np
import numpy.typing as npt


class BottomKSample:
    """Keeps the ``k`` rows with the smallest keys; each array in a chunk has one entry per row.

    >>> sample = BottomKSample(k=3, seed=0)
    >>> for start in (0, 4, 8):
    ...     sample.add({"x": np.arange(start, start + 4)})
    >>> chunked = sample.result()["x"]
    >>> whole = BottomKSample(k=3, seed=0)
    >>> whole.add({"x": np.arange(12)})
    >>> bool((whole.result()["x"] == chunked).all()), len(chunked)
    (True, 3)
    """

    def __init__(self, k: int, seed: int) -> None:
        self.k = k
        self._rng = np.random.default_rng(seed)
        self._keys = np.zeros(0, dtype=np.float64)
        self._rows = np.zeros(0, dtype=np.int64)
        self._arrays: dict[str, np.ndarray] = {}
        self._seen = 0

    def add(self, arrays: Mapping[str, np.ndarray]) -> None:
        n = len(next(iter(arrays.values())))
        keys = self._rng.random(n)
        rows = np.arange(self._seen, self._seen + n, dtype=np.int64)
        self._seen += n
        take = np.flatnonzero(keys < self._keys.max()) if len(self._keys) >= self.k else np.arange(n)
        if take.size == 0:
            return
        keys, rows = np.concatenate([self._keys, keys[take]]), np.concatenate([self._rows, rows[take]])
        merged = {
            name: np.concatenate([self._arrays[name], values[take]]) if name in self._arrays else values[take]
            for name, values in arrays.items()
        }
        if len(keys) > self.k:
            keep = np.argpartition(keys, self.k - 1)[: self.k]
            keys, rows = keys[keep], rows[keep]
            merged = {name: values[keep] for name, values in merged.items()}
        self._keys, self._rows, self._arrays = keys, rows, merged

    def result(self) -> dict[str, np.ndarray]:
        """The kept rows, in file order."""
        order = np.argsort(self._rows, kind="stable")
        return {name: values[order] for name, values in self._arrays.items()}

    @property
    def rows(self) -> npt.NDArray[np.int64]:
        """The file rows kept (0-based), in file order."""
        return np.sort(self._rows)
