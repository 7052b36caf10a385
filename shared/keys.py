"""Every Redis key Driftwatch uses, in one place (the Lua scripts receive them in ``KEYS``).

All keys of one model carry the model name as a Redis Cluster hash tag
(``driftwatch:{digits-mlp}:...``), so a model's streams and state live in one
slot: the Lua scripts that update state atomically may touch any of them, and
models spread across a cluster by name.

Two scopes:

- *model* keys (``driftwatch:{model}:...``): the streams, the registry
  (``model_info``, references), the prediction/label join, feedback totals,
  alerts, service stats and the version-series registry. Feedback carries no
  model version, so everything it touches before the join is model-scoped.
- *series* keys (``driftwatch:{model}:v:{version}:...``): one window series per
  model version (ingest counter, windows, reports, histograms, per-window and
  per-version performance counts). A new version starts a new series at window
  0 against its own reference, and no window ever holds rows of two versions.
  They need ``Keys(model, version)``; reading one from ``Keys(model)`` raises.
"""

from __future__ import annotations

from dataclasses import dataclass

CONSUMER_GROUP = "monitor"
KEY_ROOT = "driftwatch"

MODELS_INDEX = f"{KEY_ROOT}:models"
"""Set: the name of every registered model (each registration adds its name; monitors discover models here)."""

ALERT_RULES = f"{KEY_ROOT}:alerts:rules"
"""Hash: alert rule name -> rule JSON, for every model (a rule may name one); see monitor/alerts/store.py."""

ALERT_LEADER = f"{KEY_ROOT}:alerts:leader"
"""String with TTL: the monitor replica that currently sends every model's alert notifications."""


def hash_tag_prefix(key: str) -> str:
    """``driftwatch:{model}`` of ``driftwatch:{model}:predictions``: the part that fixes a key's cluster slot."""
    end = key.find("}")
    return key[: end + 1] if end > 0 else key


# Fields of the series registry hash (``Keys.series``): a version's ordinal, the
# reverse (ordinal -> version) and the counter that allocates them (shared/series.py).
SERIES_VERSION_FIELD = "v:"
SERIES_ORDINAL_FIELD = "n:"
SERIES_COUNTER_FIELD = "next"


@dataclass(frozen=True, slots=True)
class Keys:
    """Key names for one model, and (with ``version``) for that version's window series."""

    model: str
    version: str | None = None

    @classmethod
    def of_stream(cls, stream: str) -> Keys:
        """The keys of the model whose stream this is (``driftwatch:{model}:...``)."""
        tag = hash_tag_prefix(stream)
        head = f"{KEY_ROOT}:{{"
        if not (tag.startswith(head) and tag.endswith("}")):
            raise ValueError(f"{stream!r} is not a Driftwatch stream")
        return cls(tag[len(head) : -1])

    def for_version(self, version: str) -> Keys:
        """The keys of one version's series of this model."""
        return Keys(self.model, version)

    @property
    def prefix(self) -> str:
        return f"{KEY_ROOT}:{{{self.model}}}"

    @property
    def series_prefix(self) -> str:
        """``driftwatch:{model}:v:<version>``: where one version's window series lives."""
        if self.version is None:
            raise ValueError(f"a window-series key of model {self.model!r} needs a version: Keys(model, version)")
        return f"{self.prefix}:v:{self.version}"

    # -- streams ---------------------------------------------------------
    @property
    def predictions(self) -> str:
        return f"{self.prefix}:predictions"

    @property
    def feedback(self) -> str:
        return f"{self.prefix}:feedback"

    @property
    def dlq(self) -> str:
        return f"{self.prefix}:dlq"

    def publish_batch(self, batch_id: str) -> str:
        """String with TTL: marks a batch the model service wrote, so a retry of it lands once."""
        return f"{self.prefix}:publish:batch:{batch_id}"

    def kserve_pending(self, pair: str) -> str:
        """String with TTL: the first half (request or response) of a KServe inference-logger
        pair, waiting for the other (``pair``: a hash of the event's ``ce-id`` and source)."""
        return f"{self.prefix}:kserve:pending:{pair}"

    # -- model registry --------------------------------------------------
    @property
    def model_info(self) -> str:
        """Hash: the serving model's version and metadata JSON."""
        return f"{self.prefix}:model"

    def reference(self, version: str) -> str:
        """String: the reference sample (``.npz`` bytes) of one model version."""
        return f"{self.prefix}:reference:{version}"

    @property
    def series(self) -> str:
        """Hash: the versions that have a window series, each with a small ordinal
        (``v:<version>`` -> n, ``n:<n>`` -> version, ``next``): see shared/series.py."""
        return f"{self.prefix}:series"

    # -- window state (series) ---------------------------------------------
    @property
    def ingested(self) -> str:
        """Counter: distinct predictions ingested (every mode); count windows number them from
        the current :attr:`windows_epoch` on."""
        return f"{self.series_prefix}:ingested"

    @property
    def windows_epoch(self) -> str:
        """Hash: the series' current window epoch, ``mode`` (count/time), ``size`` (count rows),
        ``start`` (the ingest counter when it began), ``first`` (its first count window index).
        Count window of prediction ``n`` (0-based) = first + (n - start) // size; a new epoch
        begins, in the ingest script, when the configured mode or size differs from it."""
        return f"{self.series_prefix}:windows:epoch"

    def window_rows(self, window: int) -> str:
        """List: the float32 feature rows of one window, in ingest order."""
        return f"{self.series_prefix}:window:{window}:rows"

    def window_meta(self, window: int) -> str:
        """Hash: one window's bounds (first/last timestamps) and model version."""
        return f"{self.series_prefix}:window:{window}:meta"

    def window_classes(self, window: int) -> str:
        """Hash: predicted class -> count within one window."""
        return f"{self.series_prefix}:window:{window}:classes"

    def window_confidence(self, window: int) -> str:
        """Hash: top-class probability percent bucket -> count within one window."""
        return f"{self.series_prefix}:window:{window}:confidence"

    def window_label_delays(self, window: int) -> str:
        """Hash: label-delay bucket (quarter octaves of seconds) -> count, by prediction window."""
        return f"{self.series_prefix}:window:{window}:label-delay"

    @property
    def label_delays_total(self) -> str:
        """Hash: label-delay bucket -> count over every version (model-scoped)."""
        return f"{self.prefix}:label-delay:total"

    @property
    def version_label_delays_total(self) -> str:
        """Hash (series): label-delay bucket -> count over this version's predictions."""
        return f"{self.series_prefix}:label-delay:total"

    def window_used_by(self, window: int) -> str:
        """Set: sliding drift windows stored that used this ingest window's rows."""
        return f"{self.series_prefix}:window:{window}:used-by"

    @property
    def windows_index(self) -> str:
        """Sorted set: the newest ingest windows that received predictions, scored by index."""
        return f"{self.series_prefix}:windows:index"

    @property
    def windows_open(self) -> str:
        """Sorted set (time windows): windows holding rows and not closed yet, scored by index."""
        return f"{self.series_prefix}:windows:open"

    @property
    def windows_retained(self) -> str:
        """Sorted set (sliding time windows): reported windows whose rows later windows may still need."""
        return f"{self.series_prefix}:windows:retained"

    @property
    def windows_closed_upto(self) -> str:
        """String (time windows): every window up to this index is closed; later rows for them are late."""
        return f"{self.series_prefix}:windows:closed-upto"

    @property
    def windows_late(self) -> str:
        """Hash (time windows): predictions that arrived after their window closed."""
        return f"{self.series_prefix}:windows:late"

    def production_reference(self, version: str) -> str:
        """Hash: the first production windows of a version, when they are the reference."""
        return f"{self.prefix}:reference:production:{version}"

    @property
    def windows_to_report(self) -> str:
        """Set: windows that are full and whose drift report is not stored yet."""
        return f"{self.series_prefix}:windows:to-report"

    # -- prediction/label join ---------------------------------------------
    # Join state is filed by the prediction's hour (read from its id) and, within
    # it, by a shard (monitor/window_state.py), so each hash stays small enough to
    # be listpack-encoded; its fields are the id's bytes the key does not imply.
    @property
    def join_state_pattern(self) -> str:
        """SCAN pattern matching every key of the join state (what its memory is measured over)."""
        return f"{self.prefix}:join:*"

    @property
    def join_shards(self) -> str:
        """String: the shards per join bucket, fixed by the first monitor (all replicas must agree)."""
        return f"{self.prefix}:join:shards"

    def joined_predictions(self, bucket: int, shard: int) -> str:
        """Hash: id field -> series, window and class (monitor/window_state.py: ``join_value``)
        for predictions of one time bucket and shard. Named ``spred``, not the single-series
        layout's ``pred``, so values of that layout are never read as this one's."""
        return f"{self.prefix}:join:{bucket}:{shard}:spred"

    def joined_labels(self, bucket: int, shard: int) -> str:
        """Hash: id field -> ``label:feedback time`` for labels of one time bucket and shard, or ``=``
        for a label counted from the prediction it carried (a per-label marker: its id counts once)."""
        return f"{self.prefix}:join:{bucket}:{shard}:label"

    def waiting_labels(self, bucket: int) -> str:
        """Counter: labels of one time bucket still waiting for their prediction
        (expires with the bucket: what is left then never found its prediction)."""
        return f"{self.prefix}:join:{bucket}:waiting"

    def confusion(self, window: int) -> str:
        """Hash: ``label:predicted`` -> count of joined pairs in one window."""
        return f"{self.series_prefix}:window:{window}:confusion"

    @property
    def confusion_total(self) -> str:
        """Hash: ``label:predicted`` -> count over all windows of every version (model-scoped)."""
        return f"{self.prefix}:confusion:total"

    @property
    def version_confusion_total(self) -> str:
        """Hash (series): ``label:predicted`` -> count over this version's windows."""
        return f"{self.series_prefix}:confusion:total"

    @property
    def feedback_counts(self) -> str:
        """Hash: totals of feedback received, joined and duplicated."""
        return f"{self.prefix}:feedback:counts"

    @property
    def service_stats(self) -> str:
        """Hash: the model services' cumulative request counts and latency buckets."""
        return f"{self.prefix}:service:stats"

    # -- reports -----------------------------------------------------------
    @property
    def drift_reports(self) -> str:
        """Hash: window index -> drift report JSON."""
        return f"{self.series_prefix}:drift:reports"

    @property
    def drift_index(self) -> str:
        """Sorted set: window indexes with a report, scored by index."""
        return f"{self.series_prefix}:drift:index"

    @property
    def drift_histograms(self) -> str:
        """Hash: window index -> that window's per-feature histogram counts (see monitor/histograms.py)."""
        return f"{self.series_prefix}:drift:histograms"

    @property
    def reference_histograms(self) -> str:
        """Hash: model version -> its reference's per-feature bins and counts."""
        return f"{self.prefix}:drift:reference-histograms"

    # -- alerts --------------------------------------------------------------
    @property
    def alert_rules(self) -> str:
        """Hash: this model's rules before rules were shared (:data:`ALERT_RULES`); read once, to move them."""
        return f"{self.prefix}:alerts:rules"

    @property
    def alert_states(self) -> str:
        return f"{self.prefix}:alerts:states"

    @property
    def alert_history(self) -> str:
        return f"{self.prefix}:alerts:history"

    # -- liveness --------------------------------------------------------------
    def heartbeat(self, consumer: str) -> str:
        """String with TTL: present while the consumer is alive."""
        return f"{self.prefix}:heartbeat:{consumer}"
