"""The ``driftwatch`` command."""

from driftwatch.cli.main import app

__all__ = ["app"]
