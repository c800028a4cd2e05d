"""velora-tui: a live terminal monitor for Velora training runs."""

__version__ = "0.3.0"
