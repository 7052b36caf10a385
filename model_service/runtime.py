"""Inference on the LiteRT interpreter.

LiteRT answers one sample in microseconds where Keras takes milliseconds, and
it keeps TensorFlow out of the serving process. The interpreter is not
thread-safe: one ``LiteRTModel`` is used from the event-loop thread only.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import numpy.typing as npt
from ai_edge_litert.interpreter import Interpreter

from shared.model_metadata import LITERT_FILE, ModelMetadata


class LiteRTModel:
    def __init__(self, model_dir: Path, num_threads: int = 1) -> None:
        self.model_dir = model_dir
        self.metadata = ModelMetadata.load(model_dir)
        self._interpreter = Interpreter(model_path=str(model_dir / LITERT_FILE), num_threads=num_threads)
        self._input = self._interpreter.get_input_details()[0]
        self._output = self._interpreter.get_output_details()[0]
        if int(self._input["shape"][-1]) != self.metadata.n_features:
            raise ValueError(
                f"{LITERT_FILE} takes {self._input['shape'][-1]} features, "
                f"metadata lists {self.metadata.n_features}"
            )
        self._rows = 0
        self._resize(1)

    def _resize(self, rows: int) -> None:
        if rows != self._rows:
            self._interpreter.resize_tensor_input(self._input["index"], [rows, self.metadata.n_features])
            self._interpreter.allocate_tensors()
            self._rows = rows

    def predict_proba(self, features: npt.NDArray[np.float32]) -> npt.NDArray[np.float32]:
        """Class probabilities for a (rows, F) float32 matrix."""
        self._resize(features.shape[0])
        self._interpreter.set_tensor(self._input["index"], features)
        self._interpreter.invoke()
        return np.array(self._interpreter.get_tensor(self._output["index"]), dtype=np.float32)
