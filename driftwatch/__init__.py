"""Driftwatch: what users run and import (the ``driftwatch`` command, the trainer).

Nothing here is imported by the services; this package may import them. It
imports nothing at package level, so ``import driftwatch.cli`` stays light and
TensorFlow loads only inside ``driftwatch train`` (the ``train`` extra).
"""
