"""Training (needs the ``train`` extra: TensorFlow and scikit-learn)."""
