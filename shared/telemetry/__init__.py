"""OpenTelemetry metrics of Driftwatch: names, recorders and provider setup.

Wiring in a service (one line each)::

    provider = setup_telemetry("model-service", settings)  # settings: a ServiceSettings
    metrics = ModelServiceMetrics(provider.get_meter(METER_NAME), model=name, model_version=v)
    instrument_fastapi(app, provider, excluded_urls=settings.excluded_urls)
    ...
    shutdown_telemetry()            # on exit: flushes the last values

Modules: :mod:`.model_service_metrics` and :mod:`.monitor_metrics` define each
metric once (``NAME`` constant + ``create_<name>(meter)``, as OpenTelemetry's
semantic-conventions package does); :mod:`.process_metrics` adds
``process.cpu.*`` and ``process.memory.*``; :mod:`.recorders` holds the classes
the services call; :mod:`.catalogue` lists every metric with its unit,
attributes and Prometheus name (the source of ``deploy/METRICS.md`` and of
the tests that keep alerts and dashboards in step with the code).
"""

from shared.telemetry.recorders import ModelServiceMetrics, MonitorMetrics, ReportGauges
from shared.telemetry.setup import (
    METER_NAME,
    current_provider,
    instrument_fastapi,
    make_exporter,
    setup_telemetry,
    shutdown_telemetry,
)

__all__ = [
    "METER_NAME",
    "ModelServiceMetrics",
    "MonitorMetrics",
    "ReportGauges",
    "current_provider",
    "instrument_fastapi",
    "make_exporter",
    "setup_telemetry",
    "shutdown_telemetry",
]
