"""How a batch runs: where (a Ray cluster or a local one) and with how many workers of what size."""

from __future__ import annotations

from dataclasses import dataclass


@dataclass
class BatchOptions:
    """Where and how the batch runs."""

    address: str | None = None  # None: a local Ray cluster on this machine
    workers: int | None = None  # None: as many as the cluster holds
    threads: int = 1  # CPUs (and torch threads) per worker
    gpus: float = 0.0  # GPUs per worker
    retries: int = 2  # further tries of a unit whose worker died
    shard_size: int = 256  # images per shard of an image item
