"""Databases on other hosts, read over the system's OpenSSH client: addresses, the ssh command
line, the reader sent to the host (which answers the data layer's statements), the links and
the stand-ins. Above data/, below the app
and the commands; no Textual, no click."""
