"""``driftwatch simulate``: real HTTP traffic from the model's held-out sample.

Scenarios shift the held-out data in ways with a known answer, so a user (and
the end-to-end tests) can check that the monitor finds what was done:

- ``none``: rows drawn from the held-out sample as they are: no drift.
- ``covariate-shift``: on the digits demo, brightness added to the pixels of
  ``SHIFTED_FEATURES`` (the upper-left block), clipped to the pixel range; on a
  model trained from a CSV, the first fifth of its numeric features moved by
  one standard deviation of their held-out values (pixel offsets and a clip at
  16 meant nothing there: a CSV of fewer than 22 features crashed with an
  IndexError, a wider one had its columns cut to 16): those features drift.
- ``label-shift``: classes 0 and 1 (class 0 alone for a binary model, where
  favouring both would change nothing) make up most of the traffic: the
  predicted class mix drifts, and features with it.

``ScenarioPlan`` holds those choices for one model, made from its
``metadata.json`` and held-out sample (``scenario_plan``).

Feedback (the true labels) is sent after all predictions, as labels arrive
late in production. The monitor's windows are global, so traffic first tops
up the window in progress and only windows made entirely of this run's
traffic are shown. With time windows (``DRIFTWATCH_WINDOW_MODE=time``) there
is nothing to top up: the run's predictions fall in the windows of the
seconds they are sent in, and the windows they reached are shown once
reported, if the last one closes within ``TIME_WINDOW_WAIT_S``; otherwise
the run says when it will.
"""

from __future__ import annotations

import enum
import time
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path

import httpx
import numpy as np
import numpy.typing as npt
from rich.console import Console
from rich.table import Table

from shared.api_auth import API_KEY_HEADER
from shared.model_metadata import HOLDOUT_FILE, METADATA_FILE, ModelMetadata

# Digits pixels 0..16; rows 0-2, columns 2-5 of the 8x8 image.
SHIFTED_FEATURES = [r * 8 + c for r in range(3) for c in range(2, 6)]
PIXEL_NAMES = [f"pixel_{r}_{c}" for r in range(8) for c in range(8)]
PIXEL_MAX = 16.0
SHIFT = 6.0


DIGITS_SOURCE = "digits"  # ``metadata.data.source`` of the bundled demo (driftwatch.trainer.datasets.DIGITS)
SHIFTED_SHARE = 5  # a CSV model's covariate shift moves the first 1/SHIFTED_SHARE of its numeric features
LABEL_SHIFT_WEIGHT = 8.0


@dataclass(frozen=True, slots=True)
class ScenarioPlan:
    """What the shifted scenarios do to one model's held-out rows.

    ``shifted`` columns get ``offsets`` added (clipped to ``upper`` where set) in
    ``covariate-shift``; ``favoured`` classes are drawn ``LABEL_SHIFT_WEIGHT`` times
    as often in ``label-shift``. ``describe`` is the line the run prints.
    """

    shifted: list[int]
    offsets: npt.NDArray[np.float32]
    upper: float | None
    favoured: list[int]
    describe: str


DIGITS_PLAN = ScenarioPlan(
    shifted=SHIFTED_FEATURES,
    offsets=np.full(len(SHIFTED_FEATURES), SHIFT, dtype=np.float32),
    upper=PIXEL_MAX,
    favoured=[0, 1],
    describe=f"covariate-shift brightens the upper-left pixels by {SHIFT:g} (at most {PIXEL_MAX:g})",
)


def scenario_plan(
    features: npt.NDArray[np.float32], labels: npt.NDArray[np.int64], metadata: ModelMetadata | None
) -> ScenarioPlan:
    """The digits demo's plan, or one made for a model trained on other data (see the module doc).

    Without metadata (a bare held-out file) a 64-column sample is taken for digits.
    """
    n_features = features.shape[1]
    if metadata is None:
        if n_features == len(PIXEL_NAMES):
            return DIGITS_PLAN
    elif metadata.data.source == DIGITS_SOURCE:
        return DIGITS_PLAN
    names = metadata.feature_names if metadata is not None else [f"feature {i}" for i in range(n_features)]
    numeric = [i for i, c in enumerate(metadata.categorical) if not c] if metadata is not None else []
    candidates = numeric or list(range(n_features))
    shifted = candidates[: max(1, -(-len(candidates) // SHIFTED_SHARE))]
    spread = np.nanstd(features[:, shifted].astype(np.float64), axis=0) if len(features) else np.zeros(len(shifted))
    offsets = np.where(np.isfinite(spread) & (spread > 0), spread, 1.0).astype(np.float32)
    n_classes = metadata.n_classes if metadata is not None and metadata.n_classes else int(labels.max(initial=1)) + 1
    favoured = [0, 1] if n_classes > 2 else [0]
    return ScenarioPlan(
        shifted=shifted,
        offsets=offsets,
        upper=None,
        favoured=favoured,
        describe="covariate-shift adds one standard deviation (of the held-out sample) to "
        + ", ".join(names[i] for i in shifted),
    )


TIME_WINDOW_WAIT_S = 120.0
"""Longest wait for a time window's report: the default windows of 300 s are not waited for."""


class Scenario(enum.StrEnum):
    none = "none"
    covariate_shift = "covariate-shift"
    label_shift = "label-shift"


@dataclass(frozen=True, slots=True)
class Traffic:
    features: npt.NDArray[np.float32]
    labels: npt.NDArray[np.int64]


def make_traffic(
    scenario: Scenario,
    features: npt.NDArray[np.float32],
    labels: npt.NDArray[np.int64],
    n: int,
    seed: int,
    window: int | None = None,
    plan: ScenarioPlan = DIGITS_PLAN,
) -> Traffic:
    """``n`` rows of the scenario, shifted as ``plan`` says (default: the digits demo's).
    With ``window``, every consecutive block of that many rows is drawn without
    replacement (a fresh permutation prefix), so a monitor window aligned with the
    blocks never sees a row twice: a true no-drift draw whenever the window is no
    larger than the held-out sample."""
    rng = np.random.default_rng(seed)
    if scenario is Scenario.label_shift:
        weights = np.where(np.isin(labels, plan.favoured), LABEL_SHIFT_WEIGHT, 1.0)
        rows = rng.choice(len(labels), size=n, replace=True, p=weights / weights.sum())
    else:
        block = min(window or len(labels), len(labels))
        blocks = [rng.permutation(len(labels))[:block] for _ in range(-(-n // block))]
        rows = np.concatenate(blocks)[:n] if blocks else np.empty(0, dtype=np.int64)
    x = features[rows].copy()
    if scenario is Scenario.covariate_shift:
        moved = x[:, plan.shifted] + plan.offsets
        x[:, plan.shifted] = moved if plan.upper is None else np.minimum(moved, plan.upper)
    return Traffic(x.astype(np.float32), labels[rows])


def send_traffic(
    client: httpx.Client, model_url: str, traffic: Traffic, batch: int
) -> tuple[list[str], npt.NDArray[np.int64]]:
    """Prediction ids and predicted classes, in traffic order."""
    ids: list[str] = []
    classes: list[int] = []
    for start in range(0, len(traffic.labels), batch):
        rows = traffic.features[start : start + batch]
        response = client.post(f"{model_url}/predict", json={"instances": rows.tolist()})
        response.raise_for_status()
        predictions = response.json()["predictions"]
        ids += [p["prediction_id"] for p in predictions]
        classes += [p["class"] for p in predictions]
    return ids, np.array(classes, dtype=np.int64)


def send_feedback(client: httpx.Client, model_url: str, ids: list[str], labels: npt.NDArray[np.int64]) -> None:
    for prediction_id, label in zip(ids, labels.tolist(), strict=True):
        client.post(f"{model_url}/feedback", json={"prediction_id": prediction_id, "label": label}).raise_for_status()


def wait_for_windows(client: httpx.Client, monitor_url: str, last_window: int, timeout_s: float = 60.0) -> list[dict]:
    """Reports of windows up to ``last_window``, once the monitor has them."""
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        reports = client.get(f"{monitor_url}/drift/history", params={"limit": 1000}).json()["reports"]
        if any(r["window"] >= last_window for r in reports):
            return reports
        time.sleep(0.3)
    raise TimeoutError(f"monitor did not report window {last_window} within {timeout_s:.0f}s")


def labelled_so_far(client: httpx.Client, monitor_url: str) -> int:
    """Labels the monitor has joined for the current version (0 before any model or window)."""
    response = client.get(f"{monitor_url}/performance")
    return int(response.json()["labelled"]) if response.status_code == 200 else 0


def wait_for_labels(client: httpx.Client, monitor_url: str, expected: int, timeout_s: float = 60.0) -> dict:
    """The performance report once the monitor has joined ``expected`` labels: the feedback just
    sent is read from its stream a moment later (up to ``DRIFTWATCH_READ_LINGER_SLOW_MS`` for a
    trickle), and a report read before that would show this run's windows unlabelled."""
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        response = client.get(f"{monitor_url}/performance")
        if response.status_code == 200 and response.json()["labelled"] >= expected:
            return dict(response.json())
        time.sleep(0.3)
    raise TimeoutError(f"monitor did not join {expected} labels within {timeout_s:.0f}s")


def drift_table(report: dict) -> Table:
    table = Table(
        title=f"Window {report['window']}: {report['window_size']} predictions, "
        f"model v{report['model_version']}, correction {report['correction']}"
    )
    for column in ("feature", "test", "statistic", "p-value", "adjusted", "effect size", "drifted"):
        table.add_column(column, justify="left" if column in ("feature", "test") else "right")
    drifted = [f for f in report["features"] if f["drifted"]]
    shown = drifted or sorted(report["features"], key=lambda f: f["p_value"] if f["p_value"] is not None else 1)[:5]
    for f in shown:
        table.add_row(
            f["name"],
            f["test"],
            f"{f['statistic']:.4f}",
            f"{f['p_value']:.3g}",
            f"{f['p_value_adjusted']:.3g}",
            f"{f['effect_size']:.3f}",
            "[red]yes[/]" if f["drifted"] else "no",
        )
    return table


def served_model_mismatch(
    client: httpx.Client,
    model_url: str,
    model_dir: Path,
    metadata: ModelMetadata | None,
    n_features: int,
    console: Console,
) -> str | None:
    """Why ``model_dir``'s held-out rows cannot go to the model ``model_url`` serves (None: they can).

    Before, a held-out sample of another model (the compose stack serves the model its
    image trained, not the host's ``models/default``; a CSV model trained there since)
    was sent all the same and every batch came back a 422 of 20 errors about list
    lengths. Another version of the same model is sent, with a warning. A service that
    serves no model (``--ingest-only``) is left to ``/predict``'s own answer.
    """
    answer = client.get(f"{model_url}/model")
    if answer.status_code != 200:
        return None
    served = answer.json()
    names = list(served.get("feature_names") or [])
    ours = (
        f"{metadata.name} v{metadata.version} ({metadata.n_features} features)"
        if metadata is not None
        else f"a held-out sample of {n_features} features"
    )
    theirs = f"{served.get('name')} v{served.get('version')} ({len(names)} features)"
    if len(names) != n_features or (metadata is not None and metadata.feature_names != names):
        return (
            f"{model_url} serves {theirs}, but {model_dir} holds {ours}: point --model-dir at the served "
            "model's directory (with Docker, run simulate in the model service's container: `docker compose "
            "exec model-service driftwatch simulate --model-dir /models/default --monitor-url "
            "http://monitor:8001`)"
        )
    if metadata is not None and (served.get("name"), served.get("version")) != (metadata.name, metadata.version):
        console.print(f"[yellow]{model_url} serves {theirs}; {model_dir} holds {ours}: sending its held-out rows.[/]")
    return None


def run_simulation(
    scenario: Scenario,
    n: int,
    model_dir: Path,
    model_url: str,
    monitor_url: str,
    batch: int,
    seed: int,
    console: Console,
    *,
    api_key: str | None = None,
) -> int:
    """``driftwatch simulate``: send the traffic, then the feedback, then print both reports.

    Over 60 lines because it is a script the user watches, step by step, with
    its console output between the steps; the steps themselves are the helpers
    above (``make_traffic``, ``send_traffic``, ``send_feedback``, ``wait_for_windows``).
    """
    if not (model_dir / HOLDOUT_FILE).exists():
        console.print(
            f"[red]No held-out sample at {model_dir / HOLDOUT_FILE}[/]: point --model-dir at a model "
            "directory written by `driftwatch train` (or `driftwatch up`, which trains one first)."
        )
        return 2
    with np.load(model_dir / HOLDOUT_FILE) as holdout:
        features, labels = holdout["features"].astype(np.float32), holdout["labels"].astype(np.int64)
    metadata = ModelMetadata.load(model_dir) if (model_dir / METADATA_FILE).exists() else None
    plan = scenario_plan(features, labels, metadata)
    if scenario is Scenario.covariate_shift:
        console.print(f"  ({plan.describe})")
    try:
        with httpx.Client(timeout=30.0, headers={API_KEY_HEADER: api_key} if api_key else None) as client:
            refused = served_model_mismatch(client, model_url, model_dir, metadata, features.shape[1], console)
        if refused is not None:
            console.print(f"[red]{refused}[/]")
            return 2
        run = _Run(scenario, n, features, labels, plan, model_url, monitor_url, batch, seed, console)
        return _simulate(run, api_key)
    except httpx.HTTPStatusError as exc:  # a wrong key, a model service without a model (--ingest-only)...
        answer = exc.response
        try:
            detail = answer.json().get("detail", answer.text)
        except ValueError:
            detail = answer.text
        console.print(
            f"[red]{exc.request.method} {exc.request.url} answered {answer.status_code}:[/] {str(detail)[:500]}"
        )
    except TimeoutError as exc:  # the monitor did not report or join in time: say which, no traceback
        console.print(f"[red]{exc}[/]: is the monitor running and keeping up (its /readyz)?")
    except httpx.RequestError as exc:  # refused, timed out
        url = exc.request.url
        console.print(
            f"[red]cannot reach {url.scheme}://{url.netloc.decode()}[/] ({exc}): is the stack up "
            "(`driftwatch up`), and are --model-url and --monitor-url right?"
        )
    return 1


@dataclass(frozen=True)
class _Run:
    """What one ``driftwatch simulate`` sends, where, and where it prints."""

    scenario: Scenario
    n: int
    features: np.ndarray  # the held-out sample the traffic is drawn from
    labels: np.ndarray
    plan: ScenarioPlan
    model_url: str
    monitor_url: str
    batch: int
    seed: int
    console: Console


def _simulate(run: _Run, api_key: str | None) -> int:
    """The run itself: its HTTP errors are named by ``run_simulation``."""
    scenario, n, features, labels, plan = run.scenario, run.n, run.features, run.labels, run.plan
    model_url, monitor_url, batch, seed, console = run.model_url, run.monitor_url, run.batch, run.seed, run.console
    # With DRIFTWATCH_API_KEY set on the services, /predict and /feedback need the key (reads may too).
    with httpx.Client(timeout=30.0, headers={API_KEY_HEADER: api_key} if api_key else None) as client:
        answer = client.get(f"{monitor_url}/drift/window")
        answer.raise_for_status()
        progress = answer.json()
        if progress["size"] is None:  # time windows: no count to fill
            return _simulate_time_windows(client, run)
        size, filled, first_window = progress["size"], progress["filled"], progress["window"]
        if size > len(labels):
            console.print(
                f"[yellow]The held-out sample has {len(labels)} rows, fewer than a window of {size}: "
                "rows repeat within each window, which the KS test rightly sees as a sample unlike "
                "the reference, so even --scenario none shows drift. Run the stack with "
                f"--window-size {len(labels)} or less (DRIFTWATCH_WINDOW_SIZE in a container), or train on "
                "more data.[/]"
            )
        labelled_before = labelled_so_far(client, monitor_url)
        top_up = (size - filled) % size
        if top_up:
            first_window += 1
        total = top_up + n
        last_window = (first_window * size + n) // size - 1
        if last_window < first_window:
            console.print(f"[yellow]{n} predictions do not fill a window of {size}: send at least {size}.[/]")
        # The top-up finishes a window that is not ours; then whole windows, each
        # drawn without replacement from the held-out sample.
        top_traffic = make_traffic(scenario, features, labels, top_up, seed + 1, plan=plan)
        run_traffic = make_traffic(scenario, features, labels, n, seed, window=size, plan=plan)
        traffic = Traffic(
            np.concatenate([top_traffic.features, run_traffic.features]),
            np.concatenate([top_traffic.labels, run_traffic.labels]),
        )
        console.print(
            f"Scenario [bold]{scenario.value}[/]: sending {total} predictions "
            f"({top_up} to finish the window in progress) in batches of {batch}..."
        )
        started = time.monotonic()
        ids, predicted = send_traffic(client, model_url, traffic, batch)
        console.print(f"  {total} predictions in {time.monotonic() - started:.1f}s; now the delayed feedback...")
        send_feedback(client, model_url, ids, traffic.labels)
        if last_window < first_window:
            return 1
        reports = wait_for_windows(client, monitor_url, last_window)
        performance = wait_for_labels(client, monitor_url, labelled_before + total)

    ours = sorted((r for r in reports if first_window <= r["window"] <= last_window), key=lambda r: r["window"])
    print_run(console, scenario, ours, performance, float((predicted == traffic.labels).mean()))
    return 0


def _simulate_time_windows(client: httpx.Client, run: _Run) -> int:
    """The run with time windows: send, label, then show the windows the traffic reached."""
    scenario, n, console, model_url, monitor_url = run.scenario, run.n, run.console, run.model_url, run.monitor_url
    labelled_before = labelled_so_far(client, monitor_url)
    traffic = make_traffic(scenario, run.features, run.labels, n, run.seed, plan=run.plan)
    console.print(
        f"Scenario [bold]{scenario.value}[/]: sending {n} predictions in batches of {run.batch} "
        "(time windows: each holds the predictions of its seconds)..."
    )
    sent_from = datetime.now(UTC)
    started = time.monotonic()
    ids, predicted = send_traffic(client, model_url, traffic, run.batch)
    console.print(f"  {n} predictions in {time.monotonic() - started:.1f}s; now the delayed feedback...")
    send_feedback(client, model_url, ids, traffic.labels)
    performance = wait_for_labels(client, monitor_url, labelled_before + n)
    last = client.get(f"{monitor_url}/drift/window").raise_for_status().json()  # the window now filling
    closes_in = (datetime.fromisoformat(last["end"]) - datetime.now(UTC)).total_seconds()
    direct = float((predicted == traffic.labels).mean())
    if closes_in > TIME_WINDOW_WAIT_S:
        console.print(
            f"[yellow]The last window this run reached, {last['window']}, ends at {last['end']}, "
            f"{closes_in:.0f} s from now; its report follows then (plus the monitor's grace, "
            f"DRIFTWATCH_WINDOW_GRACE_S) at {monitor_url}/drift.[/]"
        )
        print_run(console, scenario, [], performance, direct)
        return 0
    reports = wait_for_windows(client, monitor_url, last["window"], timeout_s=max(closes_in, 0) + 60)
    # The windows this run's predictions reached: those ending after it began.
    ours = sorted(
        (r for r in reports if datetime.fromisoformat(r["window_end"]) >= sent_from), key=lambda r: r["window"]
    )
    print_run(console, scenario, ours, performance, direct)
    return 0


def print_run(console: Console, scenario: Scenario, ours: list[dict], performance: dict, direct: float) -> None:
    """The run's drift windows, the last one's features, and accuracy on the feedback."""
    summary = Table(title=f"Drift, scenario {scenario.value}")
    for column in ("window", "status", "dataset drift", "drifted features", "prediction drift", "multivariate"):
        summary.add_column(column)
    for r in ours:
        prediction = r.get("prediction_drift") or {}
        multivariate = r.get("multivariate_drift") or {}
        summary.add_row(
            str(r["window"]),
            r["status"],
            "[red]YES[/]" if r["dataset_drift"] else "no",
            f"{r['n_drifted']}/{r['n_features']} ({100 * r['drifted_share']:.0f}%)",
            ("[red]yes[/]" if prediction.get("drifted") else "no") if prediction else "-",
            ("[red]yes[/]" if multivariate.get("drifted") else "no") if multivariate else "-",
        )
    console.print(summary)
    if ours:
        console.print(drift_table(ours[-1]))
    perf = Table(title="Performance on feedback (all traffic so far)")
    for column in ("predictions", "labelled", "coverage", "accuracy"):
        perf.add_column(column, justify="right")
    accuracy = performance["accuracy"]
    coverage = performance["label_coverage"]
    perf.add_row(
        str(performance["predictions"]),
        str(performance["labelled"]),
        f"{coverage:.1%}" if coverage is not None else "-",
        f"{accuracy:.4f}" if accuracy is not None else "-",
    )
    console.print(perf)
    console.print(f"Accuracy of this run's predictions on the labels it sent: {direct:.4f}")
