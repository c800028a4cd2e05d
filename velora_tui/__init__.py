"""velora-tui: a live terminal monitor for Velora training runs."""

__version__ = "0.1.0"
