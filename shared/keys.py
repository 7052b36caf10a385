"""Every Redis key Driftwatch uses, in one place.

The Lua scripts in ``monitor/window_state.py`` build the per-window and join keys
from ``prefix`` with the same suffixes as the methods here; a change of name
is made in both places (a test checks they agree).

All keys of one model carry the model name as a Redis Cluster hash tag
(``driftwatch:{digits-mlp}:...``), so a model's streams and state live in one
slot: the Lua scripts that update state atomically may touch any of them, and
models spread across a cluster by name.
"""

from __future__ import annotations

from dataclasses import dataclass

CONSUMER_GROUP = "monitor"
KEY_ROOT = "driftwatch"

MODELS_INDEX = f"{KEY_ROOT}:models"
"""Set: the name of every registered model (each registration adds its name; monitors discover models here)."""


def hash_tag_prefix(key: str) -> str:
    """``driftwatch:{model}`` of ``driftwatch:{model}:predictions``: the part that fixes a key's cluster slot."""
    end = key.find("}")
    return key[: end + 1] if end > 0 else key


@dataclass(frozen=True, slots=True)
class Keys:
    """Key names for one model."""

    model: str

    @classmethod
    def of_stream(cls, stream: str) -> Keys:
        """The keys of the model whose stream this is (``driftwatch:{model}:...``)."""
        tag = hash_tag_prefix(stream)
        head = f"{KEY_ROOT}:{{"
        if not (tag.startswith(head) and tag.endswith("}")):
            raise ValueError(f"{stream!r} is not a Driftwatch stream")
        return cls(tag[len(head) : -1])

    @property
    def prefix(self) -> str:
        return f"{KEY_ROOT}:{{{self.model}}}"

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

    # -- model registry --------------------------------------------------
    @property
    def model_info(self) -> str:
        """Hash: the serving model's version and metadata JSON."""
        return f"{self.prefix}:model"

    def reference(self, version: str) -> str:
        """String: the reference sample (``.npz`` bytes) of one model version."""
        return f"{self.prefix}:reference:{version}"

    # -- window state ----------------------------------------------------
    @property
    def ingested(self) -> str:
        """Counter: distinct predictions ingested; window index = (n - 1) // size."""
        return f"{self.prefix}:ingested"

    def window_rows(self, window: int) -> str:
        """List: the float32 feature rows of one window, in ingest order."""
        return f"{self.prefix}:window:{window}:rows"

    def window_meta(self, window: int) -> str:
        """Hash: one window's bounds (first/last timestamps) and model version."""
        return f"{self.prefix}:window:{window}:meta"

    def window_classes(self, window: int) -> str:
        """Hash: predicted class -> count within one window."""
        return f"{self.prefix}:window:{window}:classes"

    def window_confidence(self, window: int) -> str:
        """Hash: top-class probability percent bucket -> count within one window."""
        return f"{self.prefix}:window:{window}:confidence"

    def window_label_delays(self, window: int) -> str:
        """Hash: label-delay bucket (quarter octaves of seconds) -> count, by prediction window."""
        return f"{self.prefix}:window:{window}:label-delay"

    @property
    def label_delays_total(self) -> str:
        return f"{self.prefix}:label-delay:total"

    def window_used_by(self, window: int) -> str:
        """Set: sliding drift windows stored that used this ingest window's rows."""
        return f"{self.prefix}:window:{window}:used-by"

    @property
    def windows_index(self) -> str:
        """Sorted set: the newest ingest windows that received predictions, scored by index."""
        return f"{self.prefix}:windows:index"

    @property
    def windows_open(self) -> str:
        """Sorted set (time windows): windows holding rows and not closed yet, scored by index."""
        return f"{self.prefix}:windows:open"

    @property
    def windows_retained(self) -> str:
        """Sorted set (sliding time windows): reported windows whose rows later windows may still need."""
        return f"{self.prefix}:windows:retained"

    @property
    def windows_closed_upto(self) -> str:
        """String (time windows): every window up to this index is closed; later rows for them are late."""
        return f"{self.prefix}:windows:closed-upto"

    @property
    def windows_late(self) -> str:
        """Hash (time windows): predictions that arrived after their window closed."""
        return f"{self.prefix}:windows:late"

    def production_reference(self, version: str) -> str:
        """Hash: the first production windows of a version, when they are the reference."""
        return f"{self.prefix}:reference:production:{version}"

    @property
    def windows_to_report(self) -> str:
        """Set: windows that are full and whose drift report is not stored yet."""
        return f"{self.prefix}:windows:to-report"

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
        """Hash: id field -> ``window:class`` for predictions of one time bucket and shard."""
        return f"{self.prefix}:join:{bucket}:{shard}:pred"

    def joined_labels(self, bucket: int, shard: int) -> str:
        """Hash: id field -> ``label:feedback time`` for labels of one time bucket and shard."""
        return f"{self.prefix}:join:{bucket}:{shard}:label"

    def waiting_labels(self, bucket: int) -> str:
        """Counter: labels of one time bucket still waiting for their prediction
        (expires with the bucket: what is left then never found its prediction)."""
        return f"{self.prefix}:join:{bucket}:waiting"

    def confusion(self, window: int) -> str:
        """Hash: ``label:predicted`` -> count of joined pairs in one window."""
        return f"{self.prefix}:window:{window}:confusion"

    @property
    def confusion_total(self) -> str:
        """Hash: ``label:predicted`` -> count over all windows."""
        return f"{self.prefix}:confusion:total"

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
        return f"{self.prefix}:drift:reports"

    @property
    def drift_index(self) -> str:
        """Sorted set: window indexes with a report, scored by index."""
        return f"{self.prefix}:drift:index"

    @property
    def drift_histograms(self) -> str:
        """Hash: window index -> that window's per-feature histogram counts (see monitor/histograms.py)."""
        return f"{self.prefix}:drift:histograms"

    @property
    def reference_histograms(self) -> str:
        """Hash: model version -> its reference's per-feature bins and counts."""
        return f"{self.prefix}:drift:reference-histograms"

    # -- alerts --------------------------------------------------------------
    @property
    def alert_rules(self) -> str:
        return f"{self.prefix}:alerts:rules"

    @property
    def alert_states(self) -> str:
        return f"{self.prefix}:alerts:states"

    @property
    def alert_history(self) -> str:
        return f"{self.prefix}:alerts:history"

    @property
    def alert_leader(self) -> str:
        """String with TTL: the replica that currently sends notifications."""
        return f"{self.prefix}:alerts:leader"

    # -- liveness --------------------------------------------------------------
    def heartbeat(self, consumer: str) -> str:
        """String with TTL: present while the consumer is alive."""
        return f"{self.prefix}:heartbeat:{consumer}"
