"""Read-only SQLModel models of velora's two tables.

They mirror velora's table and column names (velora.metrics imports torch, so its own models are
not used). The reader only builds SELECT statements from them: it detects the schema from the file
and never creates anything. Only the simulator, which plays velora's part, writes through them.
"""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import DateTime
from sqlmodel import Field, SQLModel


class Experiment(SQLModel, table=True):
    __tablename__ = "experiment"

    id: int | None = Field(default=None, primary_key=True)
    agent: str
    env: str
    config: str
    # Naive on purpose: velora stores `datetime.now()` (local time) with no zone.
    created_at: datetime = Field(sa_type=DateTime(timezone=False))


class Episode(SQLModel, table=True):
    __tablename__ = "episode"

    id: int | None = Field(default=None, primary_key=True)
    experiment_id: int = Field(foreign_key="experiment.id")
    episode_num: int
    reward: float
    length: int
    reward_moving_avg: float
    reward_moving_std: float
    actor_loss: float
    critic_loss: float
    # Absent from velora 0.1.1 files.
    entropy_loss: float | None = None
    created_at: datetime = Field(sa_type=DateTime(timezone=False))
