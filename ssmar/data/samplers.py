"""Resumable infinite samplers: one for labelled, one for unlabelled clips.

Each pass over the data is a fresh permutation derived from ``(seed, pass)``, so the
whole stream is a pure function of the seed and the position: saving ``(pass, pos)``
is enough to resume bit-exactly. Under DDP every process draws the same global batch
and keeps its own slice, so the global batch is the same for any number of processes.
"""

from __future__ import annotations

import torch


class InfiniteSampler:
    def __init__(self, indices: torch.Tensor, batch_size: int, seed: int, rank: int = 0, world_size: int = 1):
        if len(indices) == 0:
            raise ValueError("cannot sample from an empty set")
        if batch_size % world_size:
            raise ValueError(f"global batch {batch_size} is not divisible by {world_size} processes")
        self.indices = indices.long()
        self.batch_size = batch_size
        self.seed = seed
        self.rank, self.world_size = rank, world_size
        self.epoch, self.pos = 0, 0
        self._order = self._permutation(0)

    def _permutation(self, epoch: int) -> torch.Tensor:
        generator = torch.Generator().manual_seed(self.seed * 100_003 + epoch)
        return self.indices[torch.randperm(len(self.indices), generator=generator)]

    def next(self) -> torch.Tensor:
        """The next global batch's slice for this process (wraps into the next pass)."""
        taken = []
        need = self.batch_size
        while need:
            chunk = self._order[self.pos:self.pos + need]
            taken.append(chunk)
            need -= len(chunk)
            self.pos += len(chunk)
            if self.pos >= len(self._order):
                self.epoch, self.pos = self.epoch + 1, 0
                self._order = self._permutation(self.epoch)
        batch = torch.cat(taken)
        per_rank = self.batch_size // self.world_size
        return batch[self.rank * per_rank:(self.rank + 1) * per_rank]

    def state_dict(self) -> dict[str, int]:
        return {"epoch": self.epoch, "pos": self.pos, "seed": self.seed}

    def load_state_dict(self, state: dict[str, int]) -> None:
        self.seed, self.epoch, self.pos = state["seed"], state["epoch"], state["pos"]
        self._order = self._permutation(self.epoch)
