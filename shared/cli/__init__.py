"""The ``driftwatch`` command."""

from shared.cli.main import app

__all__ = ["app"]
