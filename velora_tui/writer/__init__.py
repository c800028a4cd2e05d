"""The only code in velora_tui that writes a metrics.db: a simulated training run written exactly
as velora writes one, for the demo, the tests and the benchmarks. Nothing that reads imports it."""
