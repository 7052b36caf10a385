"""Send the example app traffic: rows of the bundled data, jittered, optionally shifted or with nulls.

    python traffic.py --rows 2000                               # as the model saw in training: no drift
    python traffic.py --rows 2000 --shift mean_radius=1.3       # 30% larger radii: that feature drifts
    python traffic.py --rows 2000 --nulls mean_texture=0.4      # 40% of mean_texture logged null
    python traffic.py --rows 2000 --feedback 0.5                # true labels for half of the predictions
"""

from __future__ import annotations

import argparse

import httpx
import numpy as np

try:
    from . import model as example
except ImportError:
    import model as example  # type: ignore[no-redef]


def _pairs(items: list[str]) -> dict[str, float]:
    return {k: float(v) for k, v in (item.split("=", 1) for item in items)}


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--url", default="http://localhost:8080", help="the example app")
    ap.add_argument("--rows", type=int, default=2000)
    ap.add_argument("--batch", type=int, default=50, help="rows per request")
    ap.add_argument("--shift", nargs="*", default=[], metavar="FEATURE=FACTOR", help="multiply a feature")
    ap.add_argument("--nulls", nargs="*", default=[], metavar="FEATURE=SHARE", help="send a share of a feature null")
    ap.add_argument("--feedback", type=float, default=0.0, help="share of predictions whose true label is sent")
    ap.add_argument("--seed", type=int, default=1)
    args = ap.parse_args(argv)

    x, y, names, classes = example.load()
    rng = np.random.default_rng(args.seed)
    index = {n: i for i, n in enumerate(names)}
    sent = 0
    with httpx.Client(base_url=args.url, timeout=30) as http:
        while sent < args.rows:
            n = min(args.batch, args.rows - sent)
            pick = rng.integers(0, len(x), n)
            rows = x[pick] * rng.normal(1.0, 0.02, size=(n, x.shape[1]))  # jitter: no exact replays
            for name, factor in _pairs(args.shift).items():
                rows[:, index[name]] *= factor
            body = [dict(zip(names, r, strict=True)) for r in rows.tolist()]
            for name, share in _pairs(args.nulls).items():
                for i in np.flatnonzero(rng.random(n) < share).tolist():
                    body[i][name] = None
            answer = http.post("/predict", json={"rows": body})
            answer.raise_for_status()
            labelled = [
                {"id": p["id"], "label": classes[y[j]]}
                for p, j in zip(answer.json()["predictions"], pick.tolist(), strict=True)
                if rng.random() < args.feedback
            ]
            if labelled:
                http.post("/feedback", json=labelled).raise_for_status()
            sent += n
    print(f"sent {sent} rows to {args.url}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
