"""Write the real data sets that ship inside PyPI packages as .npy files, in time order.

Runs in the peers' virtualenv (NannyML and popmon live there, never in the
project's): ``python datasets.py OUT_DIR --window 1000``. Every detector, ours
and the peers', then reads the same files. Per data set ``OUT_DIR/<name>/``:

- ``reference.npy`` (n_ref, F): the sample each detector is fitted on;
- ``stream.npy`` (n, F): the windows to test, in time order, a whole number
  of windows per period;
- ``meta.json``: feature names, which are categorical (integer codes), the
  periods in order (name and number of windows; the first is the reference
  period, where nothing should fire) and where the data comes from.

Data sets:

- ``census``: NannyML's ``load_us_census_ma_employment_data()``, American
  Community Survey records of Massachusetts, 2015 (NannyML's reference
  period) then 2016, 2017, 2018. A survey year has no time inside it, and
  the file lists its rows by household (so by area): each year's rows are
  shuffled (seeded), so that a window is a sample of its year rather than
  of a few towns. The 2015 rows are split by alternate rows into the fitted
  reference and the held-out 2015 windows.
- ``flights``: popmon's ``flight_delays_reference.csv.gz`` (January-June
  2015) and ``flight_delays.csv.gz`` (July-December 2015), US domestic
  flights, sorted by date; rows with a missing delay, taxi or air time
  (cancelled or diverted flights) are dropped. January-June rows alternate
  between the fitted reference and the held-out windows; later periods are
  months. The documented change: from July 2015, after the merger, US
  Airways' flights are reported under American Airlines' code (``US``
  has 535-610 flights a month in the sample until June, 0 after; ``AA``
  doubles). Departure delays also vary week to week with the weather,
  inside the reference period as after it.
"""

from __future__ import annotations

import argparse
import json
import os
import warnings

import numpy as np

warnings.filterwarnings("ignore")


def _whole(rows: np.ndarray, window: int) -> np.ndarray:
    return rows[: len(rows) // window * window]


def _write(out: str, name: str, ref: np.ndarray, periods: list[tuple[str, np.ndarray]], names: list[str],
           categorical: list[bool], source: str, window: int) -> None:
    path = os.path.join(out, name)
    os.makedirs(path, exist_ok=True)
    stream = [_whole(rows, window) for _, rows in periods]
    np.save(os.path.join(path, "reference.npy"), ref.astype(np.float64))
    np.save(os.path.join(path, "stream.npy"), np.concatenate(stream).astype(np.float64))
    meta = {
        "features": names,
        "categorical": categorical,
        "window": window,
        "periods": [{"name": p, "windows": len(rows) // window} for (p, _), rows in zip(periods, stream, strict=True)],
        "source": source,
    }
    with open(os.path.join(path, "meta.json"), "w") as fh:
        json.dump(meta, fh, indent=1)


def census(out: str, window: int) -> None:
    import nannyml as nml

    reference, analysis, _ = nml.load_us_census_ma_employment_data()
    names = [c for c in reference.columns if c not in ("id", "employed", "year", "prediction", "predicted_probability")]
    categorical = [str(reference[c].dtype) == "category" for c in names]

    def matrix(df):
        return np.stack([df[c].astype(np.float64).to_numpy() for c in names], axis=1)

    rng = np.random.default_rng(2015)
    ref_all = rng.permutation(matrix(reference))
    periods = [("2015 (held out)", ref_all[1::2])]
    for year in sorted(analysis["year"].unique()):
        periods.append((str(year), rng.permutation(matrix(analysis[analysis["year"] == year]))))
    _write(out, "census", ref_all[0::2], periods, names, categorical,
           "nannyml.load_us_census_ma_employment_data() (ACS PUMS, Massachusetts)", window)


def flights(out: str, window: int) -> None:
    import pandas as pd
    import popmon

    base = os.path.join(os.path.dirname(popmon.__file__), "test_data")
    frames = [pd.read_csv(os.path.join(base, f)) for f in ("flight_delays_reference.csv.gz", "flight_delays.csv.gz")]
    df = pd.concat(frames, ignore_index=True)
    df = df.dropna(subset=["DEPARTURE_DELAY", "TAXI_OUT", "AIR_TIME"]).sort_values("DATE", kind="stable")
    airlines = sorted(df["AIRLINE"].unique())
    df["AIRLINE"] = df["AIRLINE"].map({a: i for i, a in enumerate(airlines)})
    names = ["CANCELLED", "AIRLINE", "DEPARTURE_DELAY", "TAXI_OUT", "AIR_TIME", "DISTANCE"]
    categorical = [False, True, False, False, False, False]
    month = df["DATE"].str[:7]
    first = df[month <= "2015-06"][names].to_numpy(np.float64)
    periods = [("Jan-Jun (held out)", first[1::2])]
    for m in sorted(month[month > "2015-06"].unique()):
        periods.append((m, df[month == m][names].to_numpy(np.float64)))
    _write(out, "flights", first[0::2], periods, names, categorical,
           "popmon test_data flight_delays(_reference).csv.gz (US flights 2015)", window)


def census_labelled(out: str) -> None:
    """2015 and 2018 census rows with their labels (employed), for benchmarks/estimate.py."""
    import nannyml as nml

    reference, analysis, targets = nml.load_us_census_ma_employment_data()
    analysis = analysis.merge(targets, on="id")
    names = [c for c in reference.columns if c not in ("id", "employed", "year", "prediction", "predicted_probability")]
    path = os.path.join(out, "census_labelled")
    os.makedirs(path, exist_ok=True)
    for year, df in (("2015", reference), ("2018", analysis[analysis["year"] == 2018])):
        np.save(os.path.join(path, f"x_{year}.npy"), np.stack([df[c].astype(np.float64).to_numpy() for c in names], 1))
        np.save(os.path.join(path, f"y_{year}.npy"), df["employed"].to_numpy(np.int64))
    with open(os.path.join(path, "meta.json"), "w") as fh:
        json.dump({"features": names, "categorical": [str(reference[c].dtype) == "category" for c in names]}, fh)


def main() -> int:
    ap = argparse.ArgumentParser()
    ap.add_argument("out")
    ap.add_argument("--window", type=int, default=1000)
    ap.add_argument("--census-labelled", action="store_true", help="only the labelled census years (estimate.py)")
    args = ap.parse_args()
    if args.census_labelled:
        census_labelled(args.out)
        return 0
    census(args.out, args.window)
    flights(args.out, args.window)
    print(args.out)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
