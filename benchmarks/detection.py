"""Detection on real drift: real data sets replayed in time order through ours and the peers'.

    .venv/bin/python benchmarks/detection.py [--peers-venv PATH] [--window 1000] [--no-peers]

The data sets ship inside PyPI packages, so this runs offline: NannyML's US
census employment data (Massachusetts, 2015-2018) and popmon's US flight
delays (2015). ``benchmarks/peers/datasets.py`` loads them in the peers'
virtualenv (``bash benchmarks/peers/setup.sh`` builds it) and writes the
same .npy files every detector reads; ``benchmarks/peers/detection_runner.py``
replays them through Evidently, Alibi Detect and NannyML in that venv.

Each data set has a reference period (its rows alternate between the sample
every detector is fitted on and held-out windows, where nothing should fire)
and later periods; the documented change is the data set's own boundary
between the two (NannyML: 2015 vs 2016-2018; popmon: January-June vs
July-December). Windows of ``--window`` rows, in time order. Per method:
the share of held-out reference windows that alarm, the share of windows
that alarm in each later period, the number of windows from the change to
the first alarm, and wall time (fit plus every window, this run).

Driftwatch runs the monitor's own configuration (``drift_config`` from
``MonitorSettings``), with Benjamini-Hochberg, and with
``min_effect_size``; categorical columns (integer codes) are tested with
chi-squared, the others with KS.

``--sensitivity`` adds Driftwatch's rows at stricter levels (alpha 0.01,
0.005) and higher effect floors (``FLOOR_SDS`` 4, 5, 6 standard deviations
above the reference chunks' mean instead of 3): what it costs in detection
to remove the stable period's last false alarms.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

import monitor.drift.reference_chunks as reference_chunks
from monitor.drift import DriftConfig, DriftDetector
from monitor.monitor_settings import MonitorSettings
from monitor.reports import drift_config

PEERS = Path(__file__).resolve().parent / "peers"
MIN_EFFECT_SIZE = 0.1
"""Normalised Wasserstein (KS features) or Jensen-Shannon (categorical): Evidently's own thresholds."""


def our_configs() -> dict[str, DriftConfig]:
    default = drift_config(MonitorSettings())
    return {
        "Driftwatch default": default,
        "Driftwatch BH": default.model_copy(update={"correction": "fdr_bh"}),
        f"Driftwatch min_effect_size={MIN_EFFECT_SIZE}": default.model_copy(
            update={"min_effect_size": MIN_EFFECT_SIZE}
        ),
    }


def sensitivity_configs() -> dict[str, tuple[DriftConfig, float]]:
    """Stricter variants of the default: (config, floor sds)."""
    default = drift_config(MonitorSettings())
    rows = {f"Driftwatch alpha={a}": (default.model_copy(update={"alpha": a}), reference_chunks.FLOOR_SDS)
            for a in (0.01, 0.005)}
    rows |= {f"Driftwatch floors at {k:g} sd": (default, k) for k in (4.0, 5.0, 6.0)}
    return rows


def run_ours(data: Path, config: DriftConfig, floor_sds: float | None = None) -> dict[str, Any]:
    """Flags per window (the report's status), and the multivariate test's own flags when the
    detector has one (issue 13, item 3: ``report.multivariate_drift``)."""
    meta = json.loads((data / "meta.json").read_text())
    ref = np.load(data / "reference.npy")
    stream = np.load(data / "stream.npy")
    size = meta["window"]
    t0 = time.perf_counter()
    saved_sds = reference_chunks.FLOOR_SDS
    if floor_sds is not None:  # not a setting: patched for this run only, read when the floors are computed
        reference_chunks.FLOOR_SDS = floor_sds
    try:
        det = DriftDetector(ref, meta["features"], config, categorical=np.array(meta["categorical"], dtype=bool))
        reports = [det.test(stream[s : s + size]) for s in range(0, len(stream), size)]
    finally:
        reference_chunks.FLOOR_SDS = saved_sds
    out: dict[str, Any] = {"flags": [r.status == "drift" for r in reports], "time": time.perf_counter() - t0}
    multivariate: list[Any] = [getattr(r, "multivariate_drift", None) for r in reports]
    if all(m is not None for m in multivariate):
        out["multivariate"] = [bool(m.drifted) for m in multivariate]
    return out


def run_peers(venv: Path, data: Path, timeout: float) -> dict[str, Any]:
    try:
        out = subprocess.run(
            [str(venv / "bin" / "python"), str(PEERS / "detection_runner.py"), str(data)],
            capture_output=True, text=True, timeout=timeout, check=True,
        )
        result: dict[str, Any] = json.loads(out.stdout)
        return result
    except (subprocess.CalledProcessError, subprocess.TimeoutExpired, json.JSONDecodeError) as exc:
        print(f"    peers failed: {exc}")
        return {}


PEER_NAMES = {
    "evidently": "Evidently DataDriftPreset()",
    "alibi": "Alibi Detect KSDrift (Bonferroni)",
    "nannyml_univariate": "NannyML univariate (defaults)",
    "nannyml_multivariate": "NannyML multivariate (PCA reconstruction)",
}


def summarise(name: str, meta: dict[str, Any], result: dict[str, Any]) -> str:
    periods = meta["periods"]
    if "error" in result:
        return f"| {name} | failed: {result['error'][:60]} |" + " |" * (len(periods) + 1)
    flags = np.array(result["flags"], dtype=bool)
    bounds = np.cumsum([0] + [p["windows"] for p in periods])
    shares = [flags[bounds[i] : bounds[i + 1]].mean() for i in range(len(periods))]
    stable = flags[: bounds[1]]
    later = np.flatnonzero(flags[bounds[1] :])
    first = f"{int(later[0]) + 1}" if later.size else "never"
    cells = [f"{int(stable.sum())}/{stable.size} ({shares[0]:.2f})"]
    cells += [f"{s:.2f}" for s in shares[1:]]
    return f"| {name} | " + " | ".join(cells) + f" | {first} | {result['time']:.1f} |"


def timeline(name: str, result: dict[str, Any]) -> str:
    if "flags" not in result:
        return ""
    return f"    {name:<44} " + "".join("x" if f else "." for f in result["flags"])


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawTextHelpFormatter)
    ap.add_argument("--peers-venv", default=os.environ.get("DRIFTWATCH_PEERS_VENV", "/tmp/driftwatch-peers-venv"))
    ap.add_argument("--window", type=int, default=1000)
    ap.add_argument("--data-dir", help="reuse files written by benchmarks/peers/datasets.py")
    ap.add_argument("--no-peers", action="store_true", help="ours only (needs --data-dir)")
    ap.add_argument("--reuse-peers", action="store_true",
                    help="with --data-dir: the peers' flags saved there by an earlier run (peers.json)")
    ap.add_argument("--peer-timeout", type=float, default=3600.0)
    ap.add_argument("--sensitivity", action="store_true",
                    help="also Driftwatch at stricter alpha and higher effect floors")
    args = ap.parse_args()
    venv = Path(args.peers_venv)
    if not (venv / "bin" / "python").exists():
        print(f"no peers' venv at {venv}: the data sets load there. Build it with bash benchmarks/peers/setup.sh")
        if not args.data_dir:
            return 1
    with tempfile.TemporaryDirectory() as tmp:
        root = Path(args.data_dir or tmp)
        if not args.data_dir:
            subprocess.run([str(venv / "bin" / "python"), str(PEERS / "datasets.py"), str(root),
                            "--window", str(args.window)], check=True, capture_output=True)
        for dataset in ("census", "flights"):
            data = root / dataset
            meta = json.loads((data / "meta.json").read_text())
            results: dict[str, dict[str, Any]] = {}
            for name, config in our_configs().items():
                results[name] = run_ours(data, config)
                flags = results[name].pop("multivariate", None)
                if flags is not None and name == "Driftwatch default":
                    results["Driftwatch multivariate test alone"] = {"flags": flags, "time": results[name]["time"]}
            if args.sensitivity:
                for name, (config, sds) in sensitivity_configs().items():
                    results[name] = run_ours(data, config, sds)
                    results[name].pop("multivariate", None)
            if not args.no_peers:
                saved = data / "peers.json"
                if args.reuse_peers and saved.exists():
                    peer_results = json.loads(saved.read_text())
                else:
                    peer_results = run_peers(venv, data, args.peer_timeout)
                    saved.write_text(json.dumps(peer_results))
                for key, res in peer_results.items():
                    results[PEER_NAMES.get(key, key)] = res
            periods = meta["periods"]
            print(f"\n## {dataset}: {meta['source']}")
            print(f"{len(meta['features'])} features ({sum(meta['categorical'])} categorical), windows of "
                  f"{meta['window']} rows: " + ", ".join(f"{p['name']} {p['windows']}" for p in periods))
            print("\n| method | alarms in " + periods[0]["name"] + " | "
                  + " | ".join(f"share flagged {p['name']}" for p in periods[1:])
                  + " | windows to first alarm after the change | wall s |")
            print("| --- | ---: | " + " | ".join("---:" for _ in periods[1:]) + " | ---: | ---: |")
            for name, res in results.items():
                print(summarise(name, meta, res))
            print("\nTimeline (x = alarm; the reference period's held-out windows first):")
            for name, res in results.items():
                print(timeline(name, res))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
