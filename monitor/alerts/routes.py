"""HTTP API of the alerting part: current alerts, their history, and the rules.

Mounted by the monitor app, which sets ``app.state.alert_store`` (the default
model's store; ``app.state.api_key`` protects the write endpoints). A monitor
with no default model sets ``app.state.alert_rules_store`` for the rules and
``app.state.no_default_model`` (why the root's alerts are a 404) instead. The read
routes (:data:`read_router`) are mounted again under ``/models/{model}`` for
each watched model, with ``app.state.alert_store_for`` giving that model's
store. Rules are shared by every model (a rule may name one in ``model``);
under ``/models/{model}`` the rules listed are those that apply to it. Rules
are called "thresholds" on the wire, as in the design's ``/alerts/thresholds``.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Sequence
from typing import Annotated, Any

from fastapi import APIRouter, Body, Depends, HTTPException, Path, Query, Request, Response, status
from fastapi.exceptions import RequestValidationError
from pydantic import BaseModel, ConfigDict, Field

from monitor.alerts.instances import AlertInstance, AlertStatus
from monitor.alerts.rules import ANY_FEATURE, MAX_RULES, NAME_PATTERN, AlertRule, default_rules, rule_json_schema
from monitor.alerts.store import AlertStore, HistoryEntry, TooManyRules
from shared.api_auth import WriteAccess
from shared.http import JsonBody

# Set by the monitor app: a watched model's store, or None when it is not watched.
StoreSource = Callable[[str], Awaitable[AlertStore | None]]


# Set by the monitor app when it has no default model: the detail of the root's 404.
NoDefaultModel = Callable[[], str]


async def get_alert_store(request: Request) -> AlertStore:
    """The path's model's store under ``/models/{model}``, else the default model's."""
    model = request.path_params.get("model")
    if model is None:
        store: AlertStore | None = getattr(request.app.state, "alert_store", None)
        why: NoDefaultModel | None = getattr(request.app.state, "no_default_model", None)
        if store is None and why is not None:
            raise HTTPException(status.HTTP_404_NOT_FOUND, detail=why())
    else:
        source: StoreSource | None = getattr(request.app.state, "alert_store_for", None)
        store = await source(model) if source is not None else None
        if store is None and source is not None:
            raise HTTPException(status.HTTP_404_NOT_FOUND, detail=f"model {model!r} is not watched by this monitor")
    if store is None:
        raise HTTPException(status.HTTP_503_SERVICE_UNAVAILABLE, detail="alerting is not configured")
    return store


Store = Annotated[AlertStore, Depends(get_alert_store)]


async def get_rules_store(request: Request) -> AlertStore:
    """Where the rules are read and written: the path's model's store under ``/models/{model}``; at
    the root any store (rules are shared), the rules' own when the monitor has no default model."""
    rules: AlertStore | None = getattr(request.app.state, "alert_rules_store", None)
    if rules is not None and request.path_params.get("model") is None:
        return rules
    return await get_alert_store(request)


Rules = Annotated[AlertStore, Depends(get_rules_store)]


async def get_model_scope(request: Request) -> str | None:
    """The model of a route under ``/models/{model}``; None at the root (every rule)."""
    model = request.path_params.get("model")
    return str(model) if model is not None else None


ModelScope = Annotated[str | None, Depends(get_model_scope)]

# Set by the monitor app: a model's feature names (None: the features of every watched model),
# None while unknown (before any is registered).
FeatureNamesSource = Callable[[str | None], Awaitable[Sequence[str] | None]]
# Set by the monitor app: whether a rule may name this model (one it knows).
ModelKnownSource = Callable[[str], Awaitable[bool]]


async def _unchecked(_model: str | None) -> Sequence[str] | None:
    return None


async def _any_model(_model: str) -> bool:
    return True


async def get_feature_names(request: Request) -> FeatureNamesSource:
    source: FeatureNamesSource | None = getattr(request.app.state, "alert_feature_names", None)
    return source if source is not None else _unchecked


async def get_model_known(request: Request) -> ModelKnownSource:
    source: ModelKnownSource | None = getattr(request.app.state, "alert_model_known", None)
    return source if source is not None else _any_model


FeatureNames = Annotated[FeatureNamesSource, Depends(get_feature_names)]
ModelKnown = Annotated[ModelKnownSource, Depends(get_model_known)]

# The read routes: at the root for the default model, and under /models/{model}.
read_router = APIRouter(prefix="/alerts", tags=["alerts"])
# The rules' writes: at the root only (rules are shared; a rule names its model in the body).
write_router = APIRouter(prefix="/alerts", tags=["alerts"])


class AlertsResponse(BaseModel):
    alerts: list[AlertInstance]


class HistoryResponse(BaseModel):
    transitions: list[HistoryEntry] = Field(description="Newest first")


class AlertRuleBody(AlertRule):
    """A rule in ``PUT /alerts/thresholds/{name}``: the name comes from the path and may be left out."""

    # The rule schema without its example, whose name would differ from the path's.
    model_config = ConfigDict(json_schema_extra=lambda schema: rule_json_schema(schema, []))

    name: Annotated[str | None, Field(pattern=NAME_PATTERN)] = None  # type: ignore[assignment]


_RULE_EXAMPLES: dict[str, Any] = {
    "accuracy": {
        "summary": "Accuracy below 0.8 once 100 labels arrived",
        "value": {
            "metric": "accuracy",
            "op": "<",
            "value": 0.8,
            "for": {"windows": 1},
            "min_samples": 100,
            "labels": {"severity": "critical"},
            "annotations": {"summary": "Accuracy {{ $value }} below 0.8"},
        },
    },
    "any_feature": {
        "summary": "Any feature drifting for 2 windows",
        "value": {
            "metric": "feature_p_value_adjusted",
            "feature": "*",
            "op": "<",
            "value": 0.01,
            "for": {"windows": 2},
            "labels": {"severity": "warning"},
            "annotations": {"summary": "{{ $labels.feature }} drifted (p = {{ $value }})"},
        },
    },
}


def _invalid(loc: tuple[str | int, ...], msg: str, value: Any) -> RequestValidationError:
    return RequestValidationError([{"type": "value_error", "loc": loc, "msg": msg, "input": value}])


async def _check_rule(
    rule: AlertRule, features: FeatureNamesSource, known: ModelKnownSource, loc: tuple[str | int, ...]
) -> None:
    """A rule names a model the monitor knows (or none), and one of that model's features (or
    '*'; of any watched model's when it names no model); features are unchecked before a model is registered."""
    if rule.model is not None and not await known(rule.model):
        raise _invalid((*loc, "model"), f"unknown model {rule.model!r}: register it first, or leave 'model' out",
                       rule.model)
    if rule.feature is None or rule.feature == ANY_FEATURE:
        return
    names = await features(rule.model)
    if names is None or rule.feature in names:
        return
    shown = ", ".join(names[:100]) + (f", ... ({len(names)} in all, see GET /model)" if len(names) > 100 else "")
    raise _invalid((*loc, "feature"), f"unknown feature {rule.feature!r}; give '*' or one of: {shown}", rule.feature)


@read_router.get("", response_model=AlertsResponse)
async def list_alerts(
    store: Store, state: Annotated[AlertStatus | None, Query(description="Only alerts in this state")] = None
) -> AlertsResponse:
    """Alert instances now: firing, pending, and resolved within the retention period."""
    alerts = await store.states()
    return AlertsResponse(alerts=[a for a in alerts if state is None or a.state is state])


@read_router.get("/history", response_model=HistoryResponse)
async def alert_history(store: Store, limit: Annotated[int, Query(ge=1, le=1000)] = 100) -> HistoryResponse:
    """The latest state transitions (pending, firing, resolved, back to inactive)."""
    return HistoryResponse(transitions=await store.history(limit))


@read_router.get("/thresholds", response_model=list[AlertRule], response_model_exclude_none=True)
async def list_rules(store: Rules, model: ModelScope) -> list[AlertRule]:
    """Every rule; under ``/models/{model}``, the rules that apply to that model."""
    return await (store.model_rules() if model is not None else store.rules())


@write_router.put("/thresholds", response_model=list[AlertRule], response_model_exclude_none=True)
async def replace_rules(
    store: Rules,
    _: WriteAccess,
    _json: JsonBody,
    features: FeatureNames,
    known: ModelKnown,
    rules: Annotated[
        list[AlertRule],
        Body(
            max_length=MAX_RULES,
            openapi_examples={
                "defaults": {
                    "summary": "The shipped defaults",
                    "value": [r.model_dump(mode="json", by_alias=True, exclude_none=True) for r in default_rules()],
                }
            }
        ),
    ],
) -> list[AlertRule]:
    """Replace the whole rule set (an empty list disables alerting and is kept across restarts).

    At most 100 rules; a rule naming a ``model`` applies to that model only (it must be
    registered); a feature rule names one of the model's features or ``*``.
    """
    seen: set[str] = set()
    for i, rule in enumerate(rules):
        if rule.name in seen:
            raise _invalid(("body", i, "name"), f"duplicate rule name {rule.name!r}", rule.name)
        seen.add(rule.name)
        await _check_rule(rule, features, known, ("body", i))
    await store.replace_rules(rules)
    return sorted(rules, key=lambda r: r.name)


_NO_RULE: dict[int | str, dict[str, Any]] = {404: {"description": "No rule of that name"}}


@read_router.get(
    "/thresholds/{name}", response_model=AlertRule, response_model_exclude_none=True, responses=_NO_RULE
)
async def get_rule(store: Rules, model: ModelScope, name: str) -> AlertRule:
    rule = await store.get_rule(name)
    if rule is None or (model is not None and not rule.applies_to(model)):
        raise HTTPException(status.HTTP_404_NOT_FOUND, detail=f"no alert rule named {name!r}")
    return rule


@write_router.put(
    "/thresholds/{name}",
    response_model=AlertRule,
    response_model_exclude_none=True,
    responses={201: {"description": "Created", "model": AlertRule}},
)
async def put_rule(
    store: Rules,
    _: WriteAccess,
    _json: JsonBody,
    features: FeatureNames,
    known: ModelKnown,
    response: Response,
    name: Annotated[str, Path(pattern=NAME_PATTERN)],
    body: Annotated[AlertRuleBody, Body(openapi_examples=_RULE_EXAMPLES)],
) -> AlertRule:
    """Create (201) or replace (200) one rule. A name in the body must equal the path's.

    Creating a rule past the limit of 100 is a 422; a rule naming a ``model`` applies to
    that model only; a feature rule names one of the model's features or ``*``.
    """
    if body.name is not None and body.name != name:
        raise _invalid(("body", "name"), f"must match the path ({name!r}) or be left out", body.name)
    rule = AlertRule.model_validate({**body.model_dump(by_alias=True, exclude={"name"}), "name": name})
    await _check_rule(rule, features, known, ("body",))
    try:
        created = await store.put_rule(rule)
    except TooManyRules as exc:
        raise _invalid(("path", "name"), str(exc), name) from None
    if created:
        response.status_code = status.HTTP_201_CREATED
    return rule


@write_router.delete("/thresholds/{name}", status_code=status.HTTP_204_NO_CONTENT, responses=_NO_RULE)
async def delete_rule(store: Rules, _: WriteAccess, name: str) -> Response:
    """Delete one rule; its firing alerts resolve at the next evaluation."""
    if not await store.delete_rule(name):
        raise HTTPException(status.HTTP_404_NOT_FOUND, detail=f"no alert rule named {name!r}")
    return Response(status_code=status.HTTP_204_NO_CONTENT)


# Everything at the root: what the monitor mounts for the default model and the rules.
router = APIRouter()
router.include_router(read_router)
router.include_router(write_router)
