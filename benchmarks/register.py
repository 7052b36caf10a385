"""Registration benchmark: ``driftwatch register``'s build of a large reference, beside reading the file.

    .venv/bin/python benchmarks/register.py [--rows 200000] [--features 50] [--formats csv,parquet]

For each format, a file of ``--rows`` x ``--features`` float features, a
2-class string prediction and its 2 probabilities is written to a temporary
directory, then timed in one run, each in a fresh process (so peak memory is
the step's own):

- baseline: reading the whole file with pyarrow (``pyarrow.csv.read_csv`` /
  ``pyarrow.parquet.read_table``), the fastest way to load it, into memory;
- register: what ``driftwatch register`` does before it writes to Redis
  (chunked read, checks, sample, spill, exact summaries), in bounded memory;
- register, standard-library CSV reader (what runs without pyarrow), for CSV.

It prints seconds, peak RSS and the ratio to the baseline. Compare ratios
measured in one run; the machine's load moves the absolute figures.
"""

from __future__ import annotations

import argparse
import subprocess
import sys
import tempfile
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]

STEP = """
import resource, sys, time
sys.path.insert(0, {root!r})
from pathlib import Path
path = Path({path!r})
started = time.perf_counter()
if {step!r} == "baseline":
    if path.suffix == ".csv":
        from pyarrow import csv
        rows = csv.read_csv(path).num_rows
    else:
        import pyarrow.parquet as pq
        rows = pq.read_table(path).num_rows
else:
    import driftwatch.registration.files as files
    if {step!r} == "register-stdlib":
        files.has_pyarrow = lambda: False
    from driftwatch.registration.build import build_from_file, default_features
    from shared.registration import RegistrationSpec
    roles = ["pred", "p0", "p1"]
    spec = RegistrationSpec(feature_names=default_features(path, roles), prediction_column="pred",
                            probability_columns=["p0", "p1"])
    rows = build_from_file(path, spec, "bench", "1").metadata.reference_summary.rows
took = time.perf_counter() - started
print(took, rows, resource.getrusage(resource.RUSAGE_SELF).ru_maxrss // 1024)
"""


def write(directory: Path, rows: int, features: int, formats: list[str]) -> dict[str, Path]:
    import pyarrow as pa
    import pyarrow.csv as pacsv
    import pyarrow.parquet as pq

    rng = np.random.default_rng(0)
    parquet_writer = None
    paths = {fmt: directory / f"reference.{fmt}" for fmt in formats}
    csv_handle = paths["csv"].open("wb") if "csv" in paths else None
    for start in range(0, rows, 50_000):
        n = min(50_000, rows - start)
        x = rng.normal(size=(n, features)).astype(np.float32)
        probs = rng.dirichlet([1, 1], n)
        columns = {f"f{j}": x[:, j] for j in range(features)}
        columns.update(pred=np.where(probs[:, 1] > 0.5, "yes", "no"), p0=probs[:, 0], p1=probs[:, 1])
        table = pa.table(columns)
        if "parquet" in paths:
            parquet_writer = parquet_writer or pq.ParquetWriter(paths["parquet"], table.schema)
            parquet_writer.write_table(table)
        if csv_handle is not None:
            pacsv.write_csv(table, csv_handle, pacsv.WriteOptions(include_header=start == 0))
    if parquet_writer is not None:
        parquet_writer.close()
    if csv_handle is not None:
        csv_handle.close()
    return paths


def timed(step: str, path: Path) -> tuple[float, int, int]:
    code = STEP.format(root=str(ROOT), path=str(path), step=step)
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout.split()
    return float(out[0]), int(out[1]), int(out[2])


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--rows", type=int, default=200_000)
    parser.add_argument("--features", type=int, default=50)
    parser.add_argument("--formats", default="csv,parquet")
    args = parser.parse_args()
    formats = args.formats.split(",")
    with tempfile.TemporaryDirectory(prefix="driftwatch-bench-") as tmp:
        paths = write(Path(tmp), args.rows, args.features, formats)
        print(f"{args.rows:,} rows x {args.features} features")
        print(f"{'format':8} {'step':18} {'seconds':>8} {'peak MB':>8} {'x baseline':>10}")
        for fmt, path in paths.items():
            steps = ["baseline", "register"] + (["register-stdlib"] if fmt == "csv" else [])
            base = None
            for step in steps:
                seconds, rows, peak_mb = timed(step, path)
                assert rows == args.rows, (step, rows)
                base = base or seconds
                print(f"{fmt:8} {step:18} {seconds:8.2f} {peak_mb:8d} {seconds / base:10.2f}")


if __name__ == "__main__":
    main()
