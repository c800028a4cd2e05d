"""Databases on other hosts, read over the system's OpenSSH client: addresses, the ssh command
line, the reader sent to the host, the links and the local copies. Above data/, below the app
and the commands; no Textual, no click."""
