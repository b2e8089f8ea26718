"""Synthetic population and traffic for the demo and benchmarks."""
