"""What each command imports when it runs.

Who may import whom is checked statically before the tests run (`make lint`: lint-imports, the
contracts in pyproject.toml): data/, remote/ and report/ import no Textual, no layer imports one
above it, and there is no module circle. What is checked here is what a static check cannot see:
what each command loads at run time, since the commands are imported lazily (cli/__init__.py)
and some of their imports wait until they are needed. `ls`, `tail`, `show`, `export` and `diff`
are what runs over SSH and in scripts, where Textual's import would only add start-up time.
Each check runs in a fresh interpreter (this one has imported Textual already, for other tests).
"""

from __future__ import annotations

import click
import pytest

from velora_tui.cli import COMMANDS, main


@pytest.mark.parametrize("name", list(COMMANDS))
def test_the_command_table_says_what_each_command_does(name: str) -> None:
    """The line `--help` lists (from the table, without importing the command) is the first
    sentence of the command's own help."""
    command = main.get_command(click.Context(main), name)
    assert command is not None
    assert command.name == name
    first = (command.help or "").split("\n\n")[0].replace("\n", " ")
    assert first.startswith(COMMANDS[name].help.rstrip(".")), first
