"""One module per schema revision (see `blindgate.storage.migrations`)."""
