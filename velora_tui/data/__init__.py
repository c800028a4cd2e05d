"""Reading a metrics.db that another process writes, and the figures made from it: the bottom
layer, which the app, the browser mode and the command line all stand on. Read-only by
construction (docs/reading-rules.md); no Textual, no click."""
