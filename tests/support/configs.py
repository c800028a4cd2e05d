"""Two configs that differ in every way a diff can show: a key changed, added, removed, a list
longer, a null (tests of data/diff.py and of `velora-tui diff`)."""

from velora_tui.data.diff import DiffRow

LEFT = {
    "agent": "NeuroFlow",
    "seed": 64,
    "model": {"gamma": 0.99, "sizes": [20, 64], "log_std": None},
    "train_params": {"batch_size": 64, "n_episodes": 100},
}
RIGHT = {
    "train_params": {"n_episodes": 100, "batch_size": 128, "warmup": 10},
    "agent": "NeuroFlow",
    "model": {"gamma": 0.99, "sizes": [20, 64, 64]},
    "notes": "bigger batch",
}


def kinds(rows: list[DiffRow]) -> dict[str, str]:
    return {row.key: row.kind for row in rows}
