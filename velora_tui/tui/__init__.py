"""The Textual app: the app, its stylesheet, screens, widgets, the messages between them and the
workers that read for them. Above the data layer, beside serve/ (which runs it in a browser)."""
