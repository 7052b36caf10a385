"""Alert rules, states and history in Redis, shared by every monitor replica.

- ``shared.keys.ALERT_RULES``: hash rule name -> rule JSON, one set for every
  model (a rule naming a ``model`` applies to that one only), plus the field
  ``#initialized`` once rules were ever set, so ``ensure_defaults`` never puts
  back a default the user deleted (rule names start with a letter, so the
  marker cannot collide with one).
- ``Keys(model).alert_states``: hash fingerprint -> ``AlertInstance`` JSON.
- ``Keys(model).alert_history``: stream of transitions (``XADD MAXLEN ~``);
  the notifier reads it through a consumer group, so a transition is recorded
  and delivered from one place.

One store per model: its states and history share the model's hash tag (one
cluster slot), the rules live apart. ``apply`` reads the rules, then runs
read-evaluate-write as an optimistic transaction (``WATCH`` the states,
evaluate, ``MULTI``/``EXEC``, retry on conflict). When two replicas evaluate
the same window, one commits; the other's ``EXEC`` fails, it re-reads the
states the first wrote, and the evaluator (idempotent per window) finds
nothing to change: one transition, not two. A rule changed during an
evaluation takes effect at the next one. A Lua script would also be atomic,
but would need the evaluator rewritten in Lua.
"""

from __future__ import annotations

import asyncio
import logging
import random
import time
from collections.abc import Iterable, Mapping

import orjson
import redis.asyncio as aioredis
from pydantic import ValidationError
from redis.exceptions import WatchError
from redis.typing import EncodableT, FieldT

from monitor.alerts.evaluator import DEFAULT_RESOLVED_RETENTION_S, evaluate
from monitor.alerts.instances import AlertInstance, AlertStatus, Transition
from monitor.alerts.rules import MAX_RULES, MODEL_VERSION_LABEL, AlertRule, default_rules
from monitor.alerts.snapshot import MetricSnapshot
from shared.keys import ALERT_RULES, Keys
from shared.redis_scripts import register_script

log = logging.getLogger(__name__)

INITIALIZED_FIELD = "#initialized"
_STATE_ORDER = {AlertStatus.firing: 0, AlertStatus.pending: 1, AlertStatus.resolved: 2, AlertStatus.inactive: 3}

class TooManyRules(Exception):
    """Creating one more rule would pass the limit (``monitor.alerts.rules.MAX_RULES``)."""


class HistoryEntry(Transition):
    """A recorded transition with its stream id (time-ordered, unique)."""

    id: str


def _text(raw: bytes | str) -> str:
    return raw.decode() if isinstance(raw, bytes) else raw


def rule_json(rule: AlertRule) -> str:
    return rule.model_dump_json(by_alias=True, exclude_none=True)


class AlertStore:
    """Persistence and the transactional evaluation of one model's alerts."""

    def __init__(
        self,
        redis: aioredis.Redis,
        keys: Keys,
        *,
        history_maxlen: int = 10_000,
        resolved_retention_s: float = DEFAULT_RESOLVED_RETENTION_S,
        extra_labels: Mapping[str, str] | None = None,
        max_conflicts: int = 50,
        rules_key: str = ALERT_RULES,
    ) -> None:
        self.redis = redis
        self.keys = keys
        self.rules_key = rules_key
        self.history_maxlen = history_maxlen
        self.resolved_retention_s = resolved_retention_s
        # Every alert says which model it is about, for routing in Alertmanager.
        self.extra_labels = dict(extra_labels) if extra_labels is not None else {"model": keys.model}
        self.max_conflicts = max_conflicts
        # Installs the defaults only if rules were never set, atomically (two replicas starting together).
        self._ensure_defaults = register_script(redis, "monitor.alerts", "ensure_default_rules.lua")
        # Creates a rule only below the limit on their number, atomically.
        self._put_rule = register_script(redis, "monitor.alerts", "put_rule.lua")

    # -- rules ----------------------------------------------------------------
    @staticmethod
    def _parse_rules(raw: Mapping[bytes | str, bytes | str]) -> list[AlertRule]:
        rules = []
        for name, body in raw.items():
            if _text(name) == INITIALIZED_FIELD:
                continue
            try:
                rules.append(AlertRule.model_validate_json(body))
            except ValidationError:
                # A rule stored by another version must not stop every other rule.
                log.exception("ignoring invalid stored alert rule %r", _text(name))
        return sorted(rules, key=lambda r: r.name)

    async def rules(self) -> list[AlertRule]:
        return self._parse_rules(await self.redis.hgetall(self.rules_key))

    async def model_rules(self) -> list[AlertRule]:
        """The rules evaluated for this store's model: those naming it or no model."""
        return [r for r in await self.rules() if r.applies_to(self.keys.model)]

    async def adopt_model_rules(self) -> bool:
        """Move the rules a single-model monitor kept under its model (``Keys.alert_rules``)
        to the shared set, when that set was never written; True when some were moved.

        Two replicas starting together may both copy: the same content, so no harm.
        """
        if await self.redis.exists(self.rules_key):
            return False
        old = await self.redis.hgetall(self.keys.alert_rules)
        if not old:
            return False
        await self.redis.hset(self.rules_key, mapping=dict(old))
        log.info("moved the alert rules of %s to the rules shared by every model", self.keys.model)
        return True

    async def get_rule(self, name: str) -> AlertRule | None:
        raw = await self.redis.hget(self.rules_key, name) if name != INITIALIZED_FIELD else None
        return AlertRule.model_validate_json(raw) if raw is not None else None

    async def put_rule(self, rule: AlertRule, max_rules: int = MAX_RULES) -> bool:
        """Create or replace one rule; True when it was created.

        Raises ``TooManyRules`` when creating it would make more than ``max_rules``
        (checked and written in one script, so concurrent creators cannot pass the limit).
        """
        created = await self._put_rule(
            keys=[self.rules_key], args=[rule.name, rule_json(rule), max_rules, INITIALIZED_FIELD]
        )
        if created == -1:
            raise TooManyRules(f"at most {max_rules} alert rules; delete one first")
        return bool(created)

    async def delete_rule(self, name: str) -> bool:
        """Delete one rule; False when there was none. Its alerts resolve at the next evaluation."""
        if name == INITIALIZED_FIELD:
            return False
        async with self.redis.pipeline(transaction=True) as pipe:
            pipe.hdel(self.rules_key, name)
            pipe.hset(self.rules_key, INITIALIZED_FIELD, "1")
            deleted, _ = await pipe.execute()
        return bool(deleted)

    async def replace_rules(self, rules: Iterable[AlertRule]) -> None:
        """Replace the whole rule set atomically (an empty set is a valid choice)."""
        bodies: dict[FieldT, EncodableT] = {r.name: rule_json(r) for r in rules}
        bodies[INITIALIZED_FIELD] = "1"
        async with self.redis.pipeline(transaction=True) as pipe:
            pipe.delete(self.rules_key)
            pipe.hset(self.rules_key, mapping=bodies)
            await pipe.execute()

    async def ensure_defaults(self, rules: Iterable[AlertRule] | None = None) -> bool:
        """Install the default rules unless rules were ever set; True when installed."""
        args: list[str] = [INITIALIZED_FIELD]
        for r in default_rules() if rules is None else rules:
            args += [r.name, rule_json(r)]
        installed = await self._ensure_defaults(keys=[self.rules_key], args=args)
        return bool(installed)

    # -- states and history -------------------------------------------------------
    @staticmethod
    def _parse_states(raw: Mapping[bytes | str, bytes | str]) -> dict[str, AlertInstance]:
        states = {}
        for fp, body in raw.items():
            try:
                states[_text(fp)] = AlertInstance.model_validate_json(body)
            except ValidationError:
                log.exception("dropping invalid stored alert state %r", _text(fp))
        return states

    async def states(self, now: float | None = None) -> list[AlertInstance]:
        """Current instances: firing first, then pending, then resolved within the retention.

        The evaluator deletes a resolved instance once ``resolved_retention_s`` has
        passed, at the next window; one past it is not shown meanwhile (``now``:
        Unix seconds, default the clock).
        """
        states = self._parse_states(await self.redis.hgetall(self.keys.alert_states))
        cutoff = (time.time() if now is None else now) - self.resolved_retention_s
        shown = [
            s for s in states.values() if not (s.state is AlertStatus.resolved and (s.ends_at or cutoff) < cutoff)
        ]
        return sorted(shown, key=lambda s: (_STATE_ORDER[s.state], s.rule, s.fingerprint))

    async def alerted_versions(self) -> set[str]:
        """The model versions some current instance is about (label ``model_version``)."""
        return {
            s.labels[MODEL_VERSION_LABEL]
            for s in self._parse_states(await self.redis.hgetall(self.keys.alert_states)).values()
            if MODEL_VERSION_LABEL in s.labels
        }

    async def history(self, limit: int = 100) -> list[HistoryEntry]:
        """The latest transitions, newest first."""
        entries = await self.redis.xrevrange(self.keys.alert_history, count=limit) or []
        return [self.history_entry(entry_id, fields) for entry_id, fields in entries if entry_id and fields]

    @staticmethod
    def history_entry(entry_id: bytes | str, fields: Mapping[bytes | str, bytes | str]) -> HistoryEntry:
        body = fields.get(b"t", fields.get("t"))
        if body is None:
            raise ValueError(f"history entry {_text(entry_id)} has no transition")
        return HistoryEntry.model_validate({**orjson.loads(body), "id": _text(entry_id)})

    # -- evaluation -------------------------------------------------------------
    async def apply(self, snapshot: MetricSnapshot) -> list[HistoryEntry]:
        """Evaluate ``snapshot`` against the stored rules and states, atomically.

        Returns the transitions this call recorded (empty when another replica
        already recorded them).
        """
        keys = self.keys
        rules = await self.model_rules()
        async with self.redis.pipeline(transaction=True) as pipe:
            for attempt in range(self.max_conflicts):
                try:
                    await pipe.watch(keys.alert_states)
                    before = self._parse_states(await pipe.hgetall(keys.alert_states))
                    result = evaluate(
                        rules,
                        before,
                        snapshot,
                        extra_labels=self.extra_labels,
                        resolved_retention_s=self.resolved_retention_s,
                    )
                    written, removed = result.changes(before)
                    if not written and not removed and not result.transitions:
                        await pipe.reset()
                        return []
                    pipe.multi()
                    if written:
                        pipe.hset(keys.alert_states, mapping={fp: s.model_dump_json() for fp, s in written.items()})
                    if removed:
                        pipe.hdel(keys.alert_states, *removed)
                    for t in result.transitions:
                        pipe.xadd(
                            keys.alert_history, {"t": t.model_dump_json()}, maxlen=self.history_maxlen, approximate=True
                        )
                    replies = await pipe.execute()
                except WatchError:
                    # Another replica changed the states first: re-read and re-evaluate.
                    await asyncio.sleep(random.uniform(0, 0.005 * (attempt + 1)))
                    continue
                ids = replies[len(replies) - len(result.transitions) :]
                return [
                    HistoryEntry.model_validate({**t.model_dump(), "id": _text(i)})
                    for i, t in zip(ids, result.transitions, strict=True)
                ]
        raise RuntimeError(f"alert evaluation lost {self.max_conflicts} optimistic races in a row")
