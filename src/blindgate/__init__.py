"""blindgate: a privacy-preserving cross-border wallet gateway, with a PSI and MPC toolkit."""

__version__ = "0.1.0"
