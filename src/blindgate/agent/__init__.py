"""The partner-side agent: field policy, seal/open, re-sign, proxy."""
