"""The monitor: consumes prediction and feedback streams, tests drift, tracks accuracy, raises alerts."""
