"""``driftwatch register``: a model trained elsewhere, described by its reference file.

Reads a CSV or Parquet file in chunks, keeps a bounded sample and exact
per-feature summaries (shared/registration), and registers the version in
Redis (``--redis-url``) or through a monitor (``--monitor-url``, API key).
TensorFlow is imported only with ``--keras``.
"""

from __future__ import annotations

import asyncio
import re
import time
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Literal

import typer
from pydantic import ValidationError
from rich.console import Console

from shared.model_metadata import ModelMetadata, Reference
from shared.registration import RegistrationError, RegistrationSpec
from shared.registration.builder import prediction_agreement
from shared.registration.spec import DEFAULT_SAMPLE_ROWS, MAX_SAMPLE_ROWS, NAME_PATTERN

if TYPE_CHECKING:
    from driftwatch.registration.keras_model import KerasSource

console = Console()
# Below this share of reference rows whose prediction is their most probable class, the probability
# columns are most likely in another order than the classes (a decision threshold moves far fewer rows).
MIN_AGREEMENT = 0.5


def _names(value: str | None) -> list[str]:
    return [v.strip() for v in value.split(",") if v.strip()] if value else []


def register(
    name: Annotated[str, typer.Option(help="Model name (Redis keys and URLs carry it)")],
    version: Annotated[str, typer.Option(help="Model version; a name+version never changes meaning")],
    reference: Annotated[Path, typer.Option(help="Reference data: a CSV or Parquet (.parquet, .pq) file", exists=True,
                                            dir_okay=False)],
    features: Annotated[str | None, typer.Option(help="Feature columns a,b,c; default: every column with no "
                                                 "other role")] = None,
    prediction_column: Annotated[str | None, typer.Option(help="The model's prediction (label or number)")] = None,
    probability_columns: Annotated[str | None, typer.Option(help="Class probabilities p0,p1,... in class order")]
    = None,
    label_column: Annotated[str | None, typer.Option(help="The true label (classifiers; empty cells allowed)")]
    = None,
    categorical: Annotated[str, typer.Option(help="Features tested with chi-squared: auto, none, or a,b")] = "auto",
    class_names: Annotated[str | None, typer.Option(help="Class labels in the model's order; default: those "
                                                    "seen, sorted")] = None,
    task: Annotated[str, typer.Option(help="classification or regression")] = "classification",
    label_join: Annotated[str, typer.Option(help="by-id: labels name a prediction id (joined through state kept "
                                            "per prediction); carried: labels carry their prediction's class and "
                                            "time, and predictions store no join state")] = "by-id",
    sample_rows: Annotated[int, typer.Option(min=1, max=MAX_SAMPLE_ROWS, help="Rows kept as the reference "
                                             "sample (uniform, seeded)")] = DEFAULT_SAMPLE_ROWS,
    seed: Annotated[int, typer.Option(min=0, help="Seed of the sample")] = 0,
    redis_url: Annotated[str | None, typer.Option(envvar="REDIS_URL", help="Register straight into this Redis")]
    = None,
    monitor_url: Annotated[str | None, typer.Option(help="Register through this monitor's "
                                                    "PUT /models/{name}/versions/{version}")] = None,
    api_key: Annotated[str | None, typer.Option(envvar="DRIFTWATCH_API_KEY", show_default=False,
                                                help="Sent as X-API-Key to the monitor")] = None,
    keras: Annotated[Path | None, typer.Option(help="A .keras file or SavedModel directory: also write a model "
                                               "directory that `driftwatch serve` runs (needs TensorFlow); "
                                               "without --redis-url/--monitor-url the service registers it")]
    = None,
    out: Annotated[Path | None, typer.Option(help="With --keras: the model directory to write "
                                             "(default models/<name>-<version>)")] = None,
) -> None:
    """Register a model trained elsewhere from its reference CSV/Parquet (no TensorFlow unless --keras)."""
    from driftwatch.registration.build import build_from_file, default_features

    for value, hint in ((name, "--name"), (version, "--version")):
        if not re.fullmatch(NAME_PATTERN, value):
            raise typer.BadParameter(f"{value!r}: letters, digits, '.', '_', '-' (at most 100)", param_hint=hint)
    if task not in ("classification", "regression"):
        raise typer.BadParameter("classification or regression", param_hint="--task")
    if label_join not in ("by-id", "carried"):
        raise typer.BadParameter("by-id or carried", param_hint="--label-join")
    if redis_url and monitor_url:
        raise typer.BadParameter("give --redis-url or --monitor-url, not both", param_hint="--monitor-url")
    started = time.perf_counter()
    source = _load_keras(keras, task) if keras is not None else None
    try:
        roles = [*_names(probability_columns), *(c for c in (prediction_column, label_column) if c)]
        spec = RegistrationSpec(
            feature_names=_names(features) or default_features(reference, roles),
            task="regression" if task == "regression" else "classification",
            prediction_column=prediction_column,
            probability_columns=_names(probability_columns),
            label_column=label_column,
            label_join="carried" if label_join == "carried" else "by-id",
            class_names=_names(class_names) or None,
            categorical=_categorical(categorical),
            source=str(reference),
            sample_rows=sample_rows,
            sample_seed=seed,
        )
        if source is not None and spec.class_names is None and not roles:
            from driftwatch.registration.keras_model import default_class_names

            spec = spec.model_copy(update={"class_names": default_class_names(source)})
        built = build_from_file(reference, spec, name, version)
    except (RegistrationError, ValueError) as exc:
        console.print(f"[red]Cannot register {reference}:[/] {_reason(exc)}")
        raise typer.Exit(2) from None
    metadata, ref = built.metadata, built.reference
    if source is not None:
        from driftwatch.registration.keras_model import write_model_dir

        model_dir = out or Path("models") / f"{name}-{version}"
        try:
            metadata, ref, worst = write_model_dir(source, model_dir, metadata, ref)
        except ValueError as exc:
            console.print(f"[red]Cannot serve the Keras model {keras}:[/] {exc}")
            raise typer.Exit(2) from None
        console.print(f"Model directory written to {model_dir}: LiteRT matches Keras within {worst:.1e} "
                      f"on the reference sample; run it with `driftwatch serve --model-dir {model_dir}`")
    took = time.perf_counter() - started
    summary = metadata.reference_summary
    rows = summary.rows if summary is not None else len(ref.features)
    console.print(
        f"Read {rows:,} rows x {metadata.n_features} features in {took:.1f} s; kept a sample of "
        f"{len(ref.features):,}; {_kind(metadata)}"
    )
    agreement = prediction_agreement(ref)
    if agreement is not None and agreement < MIN_AGREEMENT:
        classes = ", ".join(metadata.class_names[:10])
        console.print(
            f"[yellow]Warning:[/] the prediction is the most probable class in only {agreement:.0%} of the "
            f"reference rows: are --probability-columns in the classes' order ({classes})? "
            "The label-free accuracy estimate reads them in that order."
        )
    if monitor_url:
        _put(monitor_url, api_key, spec, metadata, ref)
    elif redis_url or source is None:
        _to_redis(redis_url or "redis://127.0.0.1:6379/0", metadata, ref)
    else:  # --keras alone: the model service registers the directory when it starts
        return
    console.print(f"Registered model [bold]{name}[/] version [bold]{version}[/]")


def _reason(exc: Exception) -> str:
    """What is wrong, in the options' words: pydantic's own text also dumps every argument given."""
    if isinstance(exc, ValidationError):
        return "; ".join(e["msg"].removeprefix("Value error, ") for e in exc.errors())
    return str(exc)


def _load_keras(path: Path, task: str) -> KerasSource:
    from driftwatch.registration.keras_model import load_keras

    if task == "regression":
        console.print("[red]--keras:[/] the model service serves classifiers; register a regressor without "
                      "--keras and log its predictions")
        raise typer.Exit(2)
    try:
        return load_keras(path)
    except (ValueError, OSError) as exc:
        console.print(f"[red]Cannot load the Keras model {path}:[/] {exc}")
        raise typer.Exit(2) from None


def _categorical(value: str) -> Literal["auto", "none"] | list[str]:
    if value == "auto":
        return "auto"
    return "none" if value == "none" else _names(value)


def _kind(metadata: ModelMetadata) -> str:
    if metadata.task == "regression":
        return "a regressor"
    probs = "with probabilities" if metadata.has_probabilities else "without probabilities"
    return f"{metadata.n_classes} classes ({metadata.label_kind} labels) {probs}"


def _to_redis(url: str, metadata: ModelMetadata, reference: Reference) -> None:
    import redis.asyncio as aioredis
    from redis.exceptions import RedisError

    from shared.keys import Keys
    from shared.registry import ModelIdentityConflict, register_model

    async def run() -> None:
        client = aioredis.Redis.from_url(url)
        try:
            await register_model(client, Keys(metadata.name), metadata, reference)
        finally:
            await client.aclose()

    try:
        asyncio.run(run())
    except ModelIdentityConflict as exc:
        console.print(f"[red]Refused:[/] {exc}")
        raise typer.Exit(1) from None
    except (RedisError, OSError) as exc:
        console.print(f"[red]Redis at {url} failed:[/] {exc}")
        raise typer.Exit(1) from None


def _put(url: str, api_key: str | None, spec: RegistrationSpec, metadata: ModelMetadata, reference: Reference) -> None:
    """PUT the sample and its summaries: as Parquet when pyarrow is here, as JSON otherwise or when the
    monitor reads no Parquet (415: its environment lacks pyarrow)."""
    import httpx

    from driftwatch.registration.files import has_pyarrow
    from shared.registration.wire import JSON, PARQUET, json_body, parquet_body, upload_columns, upload_spec

    sent = upload_spec(metadata, reference, spec)
    columns = upload_columns(metadata, reference, sent)
    target = f"{url.rstrip('/')}/models/{metadata.name}/versions/{metadata.version}"
    media = PARQUET if has_pyarrow() else JSON
    while True:
        body = parquet_body(sent, columns) if media == PARQUET else json_body(sent, columns)
        headers = {"Content-Type": media, **({"X-API-Key": api_key} if api_key else {})}
        try:
            answer = httpx.put(target, content=body, headers=headers, timeout=120)
        except httpx.HTTPError as exc:
            console.print(f"[red]Cannot reach {target}:[/] {exc}")
            raise typer.Exit(1) from None
        if answer.status_code == 415 and media == PARQUET:
            media = JSON
            continue
        break
    if answer.status_code not in (200, 201):
        console.print(f"[red]{target} answered {answer.status_code}:[/] {answer.text[:2000]}")
        raise typer.Exit(1)
