"""Smoke test of a slimmed venv, run inside the image build (Dockerfile, stage ``slim``).

scripts/slim_venv.sh strips shared objects and deletes parts of packages; this
runs what the services run on the result, so a cut that broke something fails
the build instead of a deployment:

* every module of the four packages imports (only the ``train`` and
  ``register`` extras may be missing: TensorFlow, scikit-learn, pyarrow...);
* a drift window goes through the KS kernels (the compiled ones when numba
  is in the image) and agrees with ``scipy.stats.ks_2samp``;
* the trained model answers through the LiteRT interpreter.

    python scripts/image_smoke.py --model-dir /models/default --numba 1
"""

from __future__ import annotations

import argparse
import importlib
import pkgutil
from pathlib import Path

import numpy as np

PACKAGES = ("driftwatch", "shared", "model_service", "monitor")
# Top-level modules of the optional extras (pyproject.toml): absent from the image.
OPTIONAL = {"tensorflow", "keras", "sklearn", "pyarrow", "pandas"}


def import_everything() -> int:
    """Import every module of the four packages; return how many imported."""
    count = 0
    for name in PACKAGES:
        package = importlib.import_module(name)
        for info in pkgutil.walk_packages(package.__path__, prefix=f"{name}."):
            if info.name.endswith(".__main__"):  # runs the CLI when imported
                continue
            try:
                importlib.import_module(info.name)
            except ModuleNotFoundError as exc:
                if (exc.name or "").split(".")[0] not in OPTIONAL:
                    raise
                continue
            count += 1
    return count


def check_drift(expect_numba: bool) -> None:
    """One drift window through the kernels, checked against scipy."""
    from scipy.stats import ks_2samp

    from monitor.drift import DriftDetector
    from monitor.drift._kernels import HAVE_NUMBA

    assert expect_numba == HAVE_NUMBA, f"HAVE_NUMBA is {HAVE_NUMBA}, expected {expect_numba}"
    rng = np.random.default_rng(0)
    ref = rng.normal(size=(5000, 8))
    win = rng.normal(size=(1000, 8))
    win[:, 0] += 0.5
    report = DriftDetector(ref, [f"f{i}" for i in range(8)]).test(win)
    for i, feature in enumerate(report.features):
        expected = ks_2samp(ref[:, i], win[:, i])
        assert feature.statistic is not None and abs(feature.statistic - expected.statistic) < 1e-12, feature
    assert [f.drifted for f in report.features] == [True] + [False] * 7, report.features


def check_litert(model_dir: Path) -> None:
    """The trained model answers through the LiteRT interpreter."""
    from model_service.runtime import LiteRTModel

    model = LiteRTModel(model_dir)
    rows = np.random.default_rng(1).uniform(0, 16, size=(32, model.metadata.n_features)).astype(np.float32)
    proba = model.predict_proba(rows)
    assert proba.shape[0] == 32 and np.allclose(proba.sum(axis=1), 1.0, atol=1e-4), proba


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--model-dir", type=Path, required=True)
    parser.add_argument("--numba", type=int, choices=(0, 1), required=True, help="1: numba must be there")
    args = parser.parse_args()
    modules = import_everything()
    check_drift(bool(args.numba))
    check_litert(args.model_dir)
    print(f"image smoke: {modules} modules import, KS kernels (numba={args.numba}) and LiteRT inference work")


if __name__ == "__main__":
    main()
