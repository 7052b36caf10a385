"""OpenTelemetry metrics of Driftwatch: names, recorders and provider setup.

Wiring in a service (one line each)::

    provider = setup_telemetry("model-service", settings)  # settings: a ServiceSettings
    metrics = ModelServiceMetrics(provider.get_meter(METER_NAME), model=name, model_version=v)
    instrument_fastapi(app, provider, excluded_urls=settings.excluded_urls)
    ...
    shutdown_telemetry()            # on exit: flushes the last values

Modules: :mod:`.catalogue` defines every metric once (a table of name,
instrument, unit, attributes and description) and makes the instruments from
it; ``deploy/METRICS.md`` and the tests that keep alerts and dashboards in
step with the code are derived from the same table. :mod:`.process_metrics`
adds ``process.cpu.*`` and ``process.memory.*``; :mod:`.recorders` holds the
classes the services call.
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
