"""What torchrun tells each process it starts, read without importing torch: the CLI uses it
to print from rank 0 alone; `hwnas.search.distributed` joins the process group with it."""

from __future__ import annotations

import os
from dataclasses import dataclass


@dataclass(frozen=True)
class Launch:
    """This process's place (`RANK`, `WORLD_SIZE`, `LOCAL_RANK`, `LOCAL_WORLD_SIZE`); one rank
    of one process without torchrun."""

    rank: int = 0
    world: int = 1
    local_rank: int = 0
    local_world: int = 1

    @classmethod
    def from_environment(cls) -> Launch:
        env = os.environ
        world = int(env.get("WORLD_SIZE", "1"))
        return cls(int(env.get("RANK", "0")), world, int(env.get("LOCAL_RANK", "0")),
                   int(env.get("LOCAL_WORLD_SIZE", str(world))))

    @property
    def is_writer(self) -> bool:
        """Rank 0 alone writes files and prints."""
        return self.rank == 0
