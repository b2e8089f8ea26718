"""Secret-sharing multi-party computation: engine and runtime."""
