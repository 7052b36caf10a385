"""The model service: serves a trained classifier and publishes every prediction."""
