"""Figures made into words for people and programs, shared by the command line and the app: human
forms of times and summaries, the alert rules, terminal notifications, episode exports. No Textual,
no click."""
