"""Every value of each numeric column, kept aside so its summaries can be exact.

Exact quantiles need all of a column's values at once, but a 1M x 200
reference does not fit in memory as one matrix. Chunks are split into columns
as they arrive and appended to one file per column (float32: the precision
events carry), so at the end each column is read back alone: memory is one
column (4 bytes a row), temporary disk the whole file once (4 bytes a value).
Without a directory the columns stay in memory (a request body, already small).
"""

from __future__ import annotations

from pathlib import Path
from typing import BinaryIO

import numpy as np
import numpy.typing as npt


class ColumnSpill:
    def __init__(self, n_columns: int, directory: Path | None = None) -> None:
        self.directory = directory
        self._memory: list[list[np.ndarray]] = [[] for _ in range(n_columns)]
        self._files: dict[int, BinaryIO] = {}

    def _path(self, j: int) -> Path:
        assert self.directory is not None
        return self.directory / f"column-{j}.f32"

    def append(self, block: npt.NDArray[np.float32]) -> None:
        """Append a chunk's rows (``n x n_columns``)."""
        by_column = np.ascontiguousarray(block.T)
        for j, values in enumerate(by_column):
            if self.directory is None:
                self._memory[j].append(values)
            else:
                if j not in self._files:
                    self._files[j] = self._path(j).open("ab")
                values.tofile(self._files[j])

    def column(self, j: int) -> npt.NDArray[np.float32]:
        """Every value of column ``j`` appended so far, in order."""
        if self.directory is None:
            parts = self._memory[j]
            return np.concatenate(parts) if parts else np.zeros(0, np.float32)
        handle = self._files.get(j)
        if handle is None:
            return np.zeros(0, np.float32)
        handle.flush()
        return np.fromfile(self._path(j), dtype=np.float32)

    def close(self) -> None:
        for handle in self._files.values():
            handle.close()
        self._files.clear()
        self._memory = [[] for _ in self._memory]
