"""The model registry over HTTP: register a version, list models, read one, retire a version.

- ``PUT /models/{name}/versions/{version}`` (API key, like the alert rules):
  the body is the registration (:mod:`shared.registration.wire`), JSON or
  Parquet, at most ``DRIFTWATCH_MAX_REGISTRATION_BYTES`` (413 beyond) and
  50,000 reference rows (422). 201 for a new version, 200 for the same one
  again, 409 for another model under a registered name+version.
- ``GET /models``: every registered model, its versions with their status,
  windows so far and last drift report.
- ``GET /models/{name}``: one model's versions with their full metadata.
- ``DELETE /models/{name}/versions/{version}`` (API key): retires the version.
  Its reference and window data expire after ``DRIFTWATCH_RETIRED_RETENTION_S``
  (30 days by default); its metadata stays, so the name+version can never be
  taken by another model. Registering the same model again reactivates it.
  A model left with no active version is dropped by this monitor at once
  (:meth:`monitor.fleet.Fleet.discover`, as its poll would), so its reads and
  ``/overview`` say so in the answer's wake; other replicas drop it at their next poll.

The per-model reads (``/models/{name}/drift`` ...) are mounted elsewhere (monitor/app.py).
"""

from __future__ import annotations

import asyncio
import re
import time
from datetime import datetime, timedelta
from typing import Annotated, Any

import orjson
import redis.asyncio as aioredis
from fastapi import APIRouter, Depends, HTTPException, Path, Request, Response, status
from fastapi.exceptions import RequestValidationError
from pydantic import BaseModel, ConfigDict

from monitor.fleet import Fleet
from monitor.monitor_settings import MonitorSettings
from monitor.registry_reads import RegistryReader
from monitor.windows import CountEpoch, WindowIndex, WindowPolicy, of_current_mode
from shared.api_auth import ReadAccess, WriteAccess
from shared.http import LargerBody
from shared.keys import Keys
from shared.model_metadata import ModelMetadata
from shared.registration import ReferenceBuilder, RegistrationError
from shared.registration.spec import MAX_SAMPLE_ROWS, NAME_PATTERN, RegistrationSpec
from shared.registration.wire import (
    JSON,
    PARQUET,
    SpecInvalid,
    read_json_body,
    read_parquet_body,
    reads_parquet,
)
from shared.registry import (
    ModelIdentityConflict,
    RegisteredModel,
    model_names,
    register_model,
    retire_version,
)

router = APIRouter(tags=["models"])

Name = Annotated[str, Path(pattern=NAME_PATTERN, description="Model name")]
Version = Annotated[str, Path(pattern=NAME_PATTERN, description="Model version")]


def larger_bodies(settings: MonitorSettings) -> list[LargerBody]:
    """The registration route's own body limit (the app's is for small JSON writes)."""
    path = re.compile(r"/models/[^/]+/versions/[^/]+")
    return [LargerBody("PUT", path, settings.max_registration_bytes)]


async def get_client(request: Request) -> aioredis.Redis:
    client: aioredis.Redis = request.app.state.redis
    return client


async def get_settings(request: Request) -> MonitorSettings:
    settings: MonitorSettings = request.app.state.settings
    return settings


async def get_registry(request: Request) -> RegistryReader:
    """The app's registry reader (its decoded metadata lives as long as the app)."""
    reader: RegistryReader = request.app.state.registry
    return reader


async def get_fleet(request: Request) -> Fleet | None:
    """The models this monitor watches; None on an app that runs no fleet."""
    fleet: Fleet | None = getattr(request.app.state, "fleet", None)
    return fleet


Client = Annotated[aioredis.Redis, Depends(get_client)]
Settings = Annotated[MonitorSettings, Depends(get_settings)]
Watched = Annotated[Fleet | None, Depends(get_fleet)]
Registry = Annotated[RegistryReader, Depends(get_registry)]


# -- answers ---------------------------------------------------------------------
class LastReport(BaseModel):
    window: int
    version: str | None = None
    status: str
    computed_at: datetime | None = None
    dataset_drift: bool | None = None
    drifted_features: list[str] = []
    prediction_drift: bool | None = None


class VersionSummary(BaseModel):
    """Times are RFC 3339 in UTC, as every time the monitor answers."""

    version: str
    status: str
    created_at: datetime
    retired_at: datetime | None = None
    expires_at: datetime | None = None  # when a retired version's data goes
    task: str
    n_features: int
    class_names: list[str]
    has_probabilities: bool
    windows: int = 0
    last_report: LastReport | None = None


class ModelSummary(BaseModel):
    name: str
    status: str
    current_version: str | None
    versions: list[VersionSummary]


class ModelList(BaseModel):
    models: list[ModelSummary]


class VersionDetail(BaseModel):
    status: str
    retired_at: datetime | None = None
    expires_at: datetime | None = None
    metadata: ModelMetadata


class ModelDetail(BaseModel):
    name: str
    status: str
    current_version: str | None
    versions: list[VersionDetail]


class Registered(BaseModel):
    name: str
    version: str
    created: bool
    status: str
    reference_rows: int
    sample_rows: int
    metadata: ModelMetadata


class RegistrationBody(BaseModel):
    """A registration as JSON: the spec, and the reference as named columns of values (``null`` = missing).

    The route parses its body itself (JSON or Parquet, :mod:`shared.registration.wire`); this
    model documents the JSON form. A Parquet body holds the same columns, and the ``metadata``
    JSON in its key-value metadata under ``driftwatch``.
    """

    model_config = ConfigDict(json_schema_extra={"examples": [{
        "metadata": {"feature_names": ["age", "plan"], "prediction_column": "churned",
                     "probability_columns": ["p_no", "p_yes"], "class_names": ["no", "yes"]},
        "reference": {"age": [34, 51, None], "plan": [0, 2, 1], "churned": ["no", "yes", "no"],
                      "p_no": [0.9, 0.2, 0.7], "p_yes": [0.1, 0.8, 0.3]},
    }]})

    metadata: RegistrationSpec
    reference: dict[str, list[float | int | str | bool | None]]


def body_models() -> list[type[BaseModel]]:
    """Bodies the registry's routes parse themselves, for the OpenAPI document's components."""
    return [RegistrationBody]


_REGISTRATION_BODY = {
    "requestBody": {
        "required": True,
        "content": {
            JSON: {"schema": {"$ref": "#/components/schemas/RegistrationBody"}},
            PARQUET: {"schema": {"type": "string", "format": "binary"}},
        },
    }
}


# -- routes ----------------------------------------------------------------------
@router.put(
    "/models/{name}/versions/{version}",
    response_model=Registered,
    status_code=status.HTTP_201_CREATED,
    openapi_extra=_REGISTRATION_BODY,
    responses={
        200: {"description": "The same model was registered already"},
        409: {"description": "Another model is registered under this name and version"},
        413: {"description": "Body over DRIFTWATCH_MAX_REGISTRATION_BYTES"},
        415: {"description": "Neither application/json nor application/vnd.apache.parquet"},
    },
)
async def put_version(
    request: Request, response: Response, name: Name, version: Version, client: Client, _: WriteAccess
) -> Registered:
    """Register a model version from its reference columns (JSON) or a Parquet file."""
    media = (request.headers.get("content-type") or "").split(";", 1)[0].strip().lower()
    if media not in (JSON, PARQUET):
        raise HTTPException(
            status.HTTP_415_UNSUPPORTED_MEDIA_TYPE, detail=f"Content-Type must be {JSON} or {PARQUET}, got {media!r}"
        )
    if media == PARQUET and not reads_parquet():
        raise HTTPException(
            status.HTTP_415_UNSUPPORTED_MEDIA_TYPE,
            detail="this monitor reads no Parquet (install driftwatch[register] beside it): send application/json",
        )
    body = await request.body()
    try:
        metadata, reference = await asyncio.to_thread(_build, body, media, name, version)
    except SpecInvalid as exc:
        raise RequestValidationError([{**e, "loc": ("body", *e["loc"])} for e in exc.errors]) from None
    except RegistrationError as exc:
        raise RequestValidationError(
            [{"type": "value_error", "loc": ("body", *exc.loc), "msg": exc.msg, "input": None}]
        ) from None
    try:
        created = await register_model(client, Keys(name), metadata, reference)
    except ModelIdentityConflict as exc:
        raise HTTPException(status.HTTP_409_CONFLICT, detail=str(exc)) from None
    if not created:
        response.status_code = status.HTTP_200_OK
    summary = metadata.reference_summary
    return Registered(
        name=name, version=version, created=created, status="active",
        reference_rows=summary.rows if summary is not None else len(reference.features),
        sample_rows=len(reference.features), metadata=metadata,
    )


def _build(body: bytes, media: str, name: str, version: str) -> tuple[Any, Any]:
    if media == PARQUET:
        spec, columns = read_parquet_body(body, MAX_SAMPLE_ROWS)
    else:
        spec, columns = read_json_body(body, MAX_SAMPLE_ROWS)
    builder = ReferenceBuilder(spec)
    builder.add(columns)
    return builder.finish(name, version)


@router.get("/models", response_model=ModelList)
async def list_models(client: Client, registry: Registry, settings: Settings, _: ReadAccess) -> ModelList:
    """Every registered model with its versions, their status, windows so far and last report."""
    names = await model_names(client)
    default = settings.default_model
    if default is not None and default not in names:  # registered before the models index existed
        names.append(default)
    models = await registry.models(sorted(names))
    reports = await _last_reports(
        client, [(m.name, v.version) for m in models for v in m.versions], WindowPolicy.from_settings(settings))
    return ModelList(models=[_summary(m, reports, settings) for m in models])


@router.get("/models/{name}", response_model=ModelDetail, responses={404: {"description": "No such model"}})
async def get_model(name: Name, registry: Registry, settings: Settings, _: ReadAccess) -> ModelDetail:
    """One model's versions with their full metadata (features, classes, reference summaries)."""
    model = await registry.model(name)
    if model is None:
        raise HTTPException(status.HTTP_404_NOT_FOUND, detail=f"no model {name!r} registered")
    return ModelDetail(
        name=model.name, status=model.status, current_version=model.current_version,
        versions=[
            VersionDetail(status=v.status, retired_at=v.retired_at,
                          expires_at=_expires(v.retired_at, settings), metadata=v.metadata)
            for v in model.versions
        ],
    )


@router.delete(
    "/models/{name}/versions/{version}", response_model=ModelDetail,
    responses={404: {"description": "No such model version"}},
)
async def delete_version(
    name: Name, version: Version, client: Client, registry: Registry, settings: Settings, fleet: Watched,
    _: WriteAccess,
) -> ModelDetail:
    """Retire a version: its data expires after the retention; its metadata stays."""
    model = await retire_version(client, Keys(name), version, settings.retired_retention_s, int(time.time()))
    if model is None:
        raise HTTPException(status.HTTP_404_NOT_FOUND, detail=f"no version {version!r} of model {name!r} registered")
    if fleet is not None and fleet.get(name) is not None:
        # The poll's own pass, now: a model with no active version left is dropped before the
        # answer (its worker stops, its alerts resolve), not up to a discovery interval later.
        await fleet.discover()
    return await get_model(name, registry, settings, None)


# -- reading windows and reports ----------------------------------------------------
def _expires(retired_at: datetime | None, settings: MonitorSettings) -> datetime | None:
    return retired_at + timedelta(seconds=settings.retired_retention_s) if retired_at is not None else None


async def _last_reports(
    client: aioredis.Redis, series: list[tuple[str, str]], policy: WindowPolicy
) -> dict[tuple[str, str], LastReport]:
    """Each (model, version) series' newest drift report of the current window mode (``policy``'s).

    Three round trips (the newest index entries with the counters, their windows' meta, the
    reports); a series whose newest report is of another window mode, left by an earlier
    ``DRIFTWATCH_WINDOW_MODE``, is searched on its own (:meth:`WindowIndex.newest`).
    """
    async with client.pipeline(transaction=False) as pipe:
        for name, version in series:
            pipe.zrevrange(Keys(name, version).drift_index, 0, 0)
            pipe.get(Keys(name, version).ingested)
            pipe.hgetall(Keys(name, version).windows_epoch)
        raw = await pipe.execute()
    candidates = [(s, int(w[0]), policy.count_window(int(n or 0), CountEpoch.from_hash(e, policy))[0])
                  for s, w, n, e in zip(series, raw[::3], raw[1::3], raw[2::3], strict=True) if w]
    async with client.pipeline(transaction=False) as pipe:
        for (name, version), window, _ in candidates:
            pipe.hmget(Keys(name, version).window_meta(window), "mode", "first_ts")
        metas = await pipe.execute()
    found: list[tuple[tuple[str, str], int]] = []
    for (s, window, filling), (kind, first) in zip(candidates, metas, strict=True):
        if of_current_mode(policy, window, kind, first, filling):
            found.append((s, window))
            continue
        name, version = s
        keys = Keys(name, version)
        older = await WindowIndex(client, keys, policy).newest(keys, keys.drift_index, 1)
        found += [(s, older[0])] if older else []
    async with client.pipeline(transaction=False) as pipe:
        for (name, version), window in found:
            pipe.hget(Keys(name, version).drift_reports, str(window))
        raws = await pipe.execute()
    reports: dict[tuple[str, str], LastReport] = {}
    for (s, _), report in zip(found, raws, strict=True):
        if report is not None:
            reports[s] = _last_report(orjson.loads(report))
    return reports


def _last_report(report: dict[str, Any]) -> LastReport:
    prediction = report.get("prediction_drift")
    return LastReport(
        window=int(report["window"]), version=report.get("model_version"), status=str(report.get("status")),
        computed_at=report.get("computed_at"),
        dataset_drift=report.get("dataset_drift"), drifted_features=report.get("drifted_features") or [],
        prediction_drift=prediction.get("drifted") if isinstance(prediction, dict) else None,
    )


def _summary(
    model: RegisteredModel, reports: dict[tuple[str, str], LastReport], settings: MonitorSettings
) -> ModelSummary:
    versions = []
    for v in model.versions:
        m = v.metadata
        mine = reports.get((model.name, v.version))  # each version has its own window series
        versions.append(VersionSummary(
            version=v.version, status=v.status, created_at=datetime.fromisoformat(m.created_at),
            retired_at=v.retired_at,
            expires_at=_expires(v.retired_at, settings), task=m.task, n_features=m.n_features,
            class_names=m.class_names, has_probabilities=m.has_probabilities,
            windows=mine.window + 1 if mine is not None else 0, last_report=mine,
        ))
    return ModelSummary(name=model.name, status=model.status, current_version=model.current_version, versions=versions)
