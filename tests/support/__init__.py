"""Helpers shared by the tests and the benchmarks (plain functions and classes; fixtures are in
tests/conftest.py). One module per kind of thing:

- `databases`: files in velora's schema (small, big, hostile, sweeps), rows added as velora does;
- `reading`: a database read back in a test;
- `folders`: "this folder is unchanged", the check behind the first rule;
- `processes`: the command line as a process, a pseudo-terminal, stopping processes;
- `cli`: a command's result, its output lines as they come, strict JSON;
- `waiting`: the one way to wait for a condition (threads and processes, and under asyncio);
- `app`: the app under Pilot; `snapshots`: the screens' snapshot tests' app and keys;
- `writers`: writer processes that lock, crash or time their commits;
- `hanging_fs`: a file system that stops answering, as a dead NFS server does;
- `sshd`: a real OpenSSH server; `browser`: `velora-tui serve` and a real Chromium;
- `numbers`: percentiles, CPU time, commit logs.

Nothing here imports pytest or Textual at module level unless its module is only for tests that
need them (`app`, `snapshots`, `cli`): the benchmarks import `databases`, `processes` and
`numbers` and measure their own process's memory and start-up.
"""

from pathlib import Path

PROJECT_ROOT = Path(__file__).resolve().parent.parent.parent
