"""``driftwatch register``: a user's own model, described by its reference file, registered by name and version."""
