"""Slurm on another host (`slurm:HOST`): its jobs through ssh, their runs through the remote
layer. The parsing, the asking and the ties are the data layer's (data/slurm*.py)."""
