"""``driftwatch``: train, register, serve, monitor, run the local stack, simulate traffic.

Heavy imports (TensorFlow, the apps) happen inside the commands, so
``driftwatch --help`` is instant and the serving image never imports TensorFlow.
"""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Annotated

import typer
from rich.console import Console

from driftwatch.cli.register import register
from driftwatch.cli.simulate import Scenario

if TYPE_CHECKING:
    from fastapi import FastAPI

app = typer.Typer(add_completion=False, no_args_is_help=True, help="Drift and performance monitoring for ML models.")
console = Console()

DEFAULT_MODEL_DIR = Path("models/default")

app.command()(register)


def _logging(level: str, service: str) -> None:
    """Every line of the service, uvicorn's too, names it and the model it is about
    ("monitor INFO monitor.reports: [churn v3] window 2: ..."): uvicorn runs with ``log_config=None``."""
    from shared.log_context import service_logging

    service_logging(service, level)


def _run_uvicorn(asgi_app: FastAPI, host: str, port: int, log_level: str) -> None:
    """Serve one of the two apps as both commands do: no access log, the logging
    :func:`_logging` set up (``log_config=None``), 15 s for requests in flight at a stop."""
    import uvicorn

    uvicorn.run(asgi_app, host=host, port=port, access_log=False, log_config=None, log_level=log_level,
                timeout_graceful_shutdown=15)


@app.command()
def train(
    data: Annotated[str, typer.Option(help="'digits' (bundled with scikit-learn) or a CSV path")] = "digits",
    label_column: Annotated[str, typer.Option(help="Label column of a CSV")] = "label",
    categorical: Annotated[
        str, typer.Option(help="Features tested with chi-squared: 'auto' (declared or detected), 'none', or a,b,c")
    ] = "auto",
    out: Annotated[Path, typer.Option(help="Model directory to write")] = DEFAULT_MODEL_DIR,
    name: Annotated[
        str | None, typer.Option(help="Model name (keys in Redis carry it); default: digits-mlp, or the CSV's name")
    ] = None,
    version: Annotated[
        str | None, typer.Option(help="Model version; default: a new one per run, UTC time + data hash prefix")
    ] = None,
    epochs: Annotated[int, typer.Option(min=1)] = 40,
    batch_size: Annotated[int, typer.Option(min=1)] = 32,
    seed: int = 0,
) -> None:
    """Train the MLP and write a model directory (needs the 'train' extra)."""
    from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn

    from driftwatch.trainer.datasets import load_dataset
    from driftwatch.trainer.train import TrainConfig
    from driftwatch.trainer.train import train as run_training

    dataset = load_dataset(data, label_column, categorical)
    console.print(
        f"Training on [bold]{dataset.source}[/]: {len(dataset.labels)} rows, "
        f"{len(dataset.feature_names)} features, {len(dataset.class_names)} classes"
    )
    config = TrainConfig(
        epochs=epochs,
        batch_size=batch_size,
        seed=seed,
        model_name=name or dataset.default_model_name,
        version=version or dataset.new_version(),
    )
    with Progress(
        TextColumn("epoch"), BarColumn(), MofNCompleteColumn(), TextColumn("{task.fields[logs]}"), console=console
    ) as progress:
        task = progress.add_task("train", total=epochs, logs="")

        def on_epoch(epoch: int, total: int, logs: dict[str, float]) -> None:
            shown = " ".join(f"{k}={v:.3f}" for k, v in logs.items() if "accuracy" in k)
            progress.update(task, completed=epoch, logs=shown)

        metadata = run_training(dataset, out, config, on_epoch=on_epoch)
    summary = metadata.training
    assert summary is not None  # a training run always writes its summary
    console.print(
        f"Test accuracy [bold green]{summary.test_accuracy:.4f}[/] "
        f"(loss {summary.test_loss:.4f}); model {metadata.name} v{metadata.version} written to {out}"
    )


@app.command()
def serve(
    model_dir: Annotated[
        Path | None, typer.Option(help="Model directory to serve; without it (and DRIFTWATCH_MODEL_DIR): ingest only")
    ] = None,
    ingest_only: Annotated[
        bool, typer.Option("--ingest-only", help="Serve no model: only log registered models' events")
    ] = False,
    host: Annotated[str | None, typer.Option()] = None,
    port: Annotated[int | None, typer.Option()] = None,
    log_level: str = "info",
) -> None:
    """Run the model service: POST /predict and /feedback for its model, POST /models/{name}/predictions
    and /feedback for any registered model."""
    from model_service.app import create_app
    from model_service.serving_settings import ModelServiceSettings

    _logging(log_level, "model_service")
    given = {"model_dir": model_dir, "host": host, "port": port, "ingest_only": ingest_only or None}
    overrides = {k: v for k, v in given.items() if v is not None}
    settings = ModelServiceSettings().model_copy(update=overrides)
    _run_uvicorn(create_app(settings), settings.host, settings.port, log_level)


@app.command()
def monitor(
    host: Annotated[str | None, typer.Option()] = None,
    port: Annotated[int | None, typer.Option()] = None,
    log_level: str = "info",
) -> None:
    """Run the monitor (consumer worker + GET /drift, /performance, /alerts)."""
    from monitor.app import create_app
    from monitor.monitor_settings import MonitorSettings

    _logging(log_level, "monitor")
    overrides = {k: v for k, v in {"host": host, "port": port}.items() if v is not None}
    settings = MonitorSettings().model_copy(update=overrides)
    _run_uvicorn(create_app(settings), settings.host, settings.port, log_level)


@app.command()
def up(
    model_dir: Annotated[Path, typer.Option(help="Model to serve; trained first if missing")] = DEFAULT_MODEL_DIR,
    ingest_only: Annotated[
        bool,
        typer.Option(
            "--ingest-only",
            help="Serve no model (no TensorFlow): only log registered models' events;"
            " the monitor watches those alone (no default model unless DRIFTWATCH_MODEL_NAME names one)",
        ),
    ] = False,
    model_port: int = 8000,
    monitor_port: int = 8001,
    window_size: Annotated[int | None, typer.Option(help="Predictions per drift window")] = None,
    redis_url: Annotated[
        str | None, typer.Option(envvar="REDIS_URL", help="Redis to use; unset: start a private redis-server")
    ] = None,
) -> None:
    """Run the whole stack locally: redis-server (unless REDIS_URL is set), model service, monitor."""
    from driftwatch.cli.stack import LocalStack, PortTaken

    stack = LocalStack(None if ingest_only else model_dir, model_port, monitor_port, redis_url, window_size, console)
    try:
        stack.check_ports()  # before training: a taken port is said at once, not after a minute of it
    except PortTaken as exc:
        console.print(f"[red]{exc}[/]")
        raise typer.Exit(1) from None
    if not ingest_only and not (model_dir / "model.tflite").exists():
        console.print(f"No model in {model_dir}: training the default model first.")
        train(out=model_dir)
    raise typer.Exit(stack.run_until_interrupted())


@app.command()
def simulate(
    scenario: Annotated[Scenario, typer.Option(help="How to shift the held-out data")] = Scenario.none,
    n: Annotated[int, typer.Option(min=1, help="Predictions to send")] = 600,
    model_dir: Annotated[Path, typer.Option(help="Model directory (its held-out sample is replayed)")] = (
        DEFAULT_MODEL_DIR
    ),
    model_url: str = "http://127.0.0.1:8000",
    monitor_url: str = "http://127.0.0.1:8001",
    batch: Annotated[int, typer.Option(min=1, help="Rows per /predict call")] = 50,
    seed: int = 0,
    api_key: Annotated[
        str | None,
        typer.Option(envvar="DRIFTWATCH_API_KEY", show_default=False, help="Sent as X-API-Key (writes need it)"),
    ] = None,
) -> None:
    """Send real traffic (and delayed feedback), then print the drift and performance reports."""
    from driftwatch.cli.simulate import run_simulation

    raise typer.Exit(
        run_simulation(scenario, n, model_dir, model_url, monitor_url, batch, seed, console, api_key=api_key)
    )


if __name__ == "__main__":
    app()
