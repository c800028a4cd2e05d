"""A stand-in for velora-tui's remote reader, for tests of what a hostile or odd host can send:
a Python program (run by the test sshd as `--remote-python`) that announces the databases it is
given and answers the data layer's questions with the rows it is given, as JSON."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

_PROGRAM = r"""
import json, sys, time
DATABASES = json.loads(sys.argv[1])
def say(m):
    sys.stdout.write(json.dumps(m) + "\n"); sys.stdout.flush()
say({"t": "hello", "v": 2})
time.sleep(float(sys.argv[2]))  # a host slow to say which databases it holds
for k, db in enumerate(DATABASES):
    say({"t": "db", "k": k, "spec": 0, "path": db["path"], "ident": "1:%d" % k, "entropy": True})
    say({"t": "v", "k": k})
say({"t": "synced"})
EPISODE = ["id", "experiment_id", "episode_num", "reward", "length", "reward_moving_avg",
           "reward_moving_std", "actor_loss", "critic_loss", "entropy_loss", "created_at"]
for line in sys.stdin:
    try:
        q = json.loads(line)
    except ValueError:
        continue
    if not isinstance(q, dict) or "sql" not in q:
        continue
    sql, db = q["sql"], DATABASES[q["k"]]
    if "sqlite_master" in sql:
        rows = [["experiment"], ["episode"]]
    elif "table_info(experiment)" in sql:
        rows = [[0, c] for c in ("id", "agent", "env", "config", "created_at")]
    elif "table_info(episode)" in sql:
        rows = [[0, c] for c in EPISODE]
    elif "data_version" in sql:
        rows = [[1]]
    elif "max(" in sql:
        rows = [[None]]
    elif "FROM experiment" in sql:
        after = q["p"].get("after", 0) if isinstance(q["p"], dict) else 0
        rows = db["experiments"] if after == 0 else []
    else:
        rows = []
    say({"t": "a", "n": q["q"], "rows": rows})
"""


def fake_reader(folder: Path, databases: list[dict[str, Any]], pause: float = 0.0) -> Path:
    """An executable to pass as `--remote-python`: it ignores its arguments and plays a reader
    holding `databases` ({"path": ..., "experiments": [[id, agent, env, config, created_at]]}),
    whose episodes table is empty; it says which it holds `pause` s after its hello."""
    program = folder / "fake_reader.py"
    program.write_text(_PROGRAM)
    wrapper = folder / "fake-python"
    data = json.dumps(databases).replace("'", "'\\''")
    wrapper.write_text(f"#!/bin/sh\nexec python3 '{program}' '{data}' {float(pause)}\n")
    wrapper.chmod(0o755)
    return wrapper
