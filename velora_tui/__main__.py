from velora_tui.cli import entry

entry()
