"""Code both services use: settings, event schemas, Redis key names, stream I/O, telemetry."""
