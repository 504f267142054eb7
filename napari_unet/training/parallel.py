"""Training as one of several processes (``torchrun``): the process group and what its ranks agree on.

``torchrun --nproc_per_node N ...`` starts N copies of a command with RANK, WORLD_SIZE and
LOCAL_RANK in their environment. :func:`session` starts the process group they share (nccl
when training on CUDA, gloo on CPUs) and ends it; :func:`current` tells the training engine
which rank it is. Without a process group every :class:`Group` method is a no-op: rank 0 of 1.

The engine (:mod:`.engine`) uses a group to keep the replicas in step: DistributedDataParallel
averages the gradients, rank 0's clock and stop flag decide the schedule, rank 0's running
BatchNorm statistics are copied to the others before every evaluation, rank 0 evaluates and
writes the files, and each rank draws its own patches (:meth:`Group.seed`).
"""

from __future__ import annotations

import hashlib
import os
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass

import numpy as np
import torch
import torch.distributed as dist

from napari_unet.devices import resolve_device


@dataclass(frozen=True)
class Group:
    """A process's place among the processes that train one model together."""

    rank: int = 0  # 0 evaluates, writes the files and prints
    size: int = 1  # processes in the group (WORLD_SIZE)
    local_rank: int = 0  # rank on this machine: its GPU (cuda:LOCAL_RANK)
    backend: str | None = None  # "nccl" or "gloo"; None alone

    @property
    def main(self) -> bool:
        """True on the rank that evaluates, writes files and prints (rank 0)."""
        return self.rank == 0

    def device(self, device: torch.device) -> torch.device:
        """The device of this rank: its own GPU when training on CUDA, otherwise ``device``."""
        return torch.device("cuda", self.local_rank) if self.size > 1 and device.type == "cuda" else device

    def seed(self, seed: int, step: int = 0) -> int:
        """The seed of this rank's sampling: ``seed`` itself for rank 0 of a fresh run (one process
        draws as it always did), a stream of its own for every other rank and for each resume.
        """
        if self.rank == 0 and step == 0:
            return seed
        return int(np.random.SeedSequence([seed, self.rank, step]).generate_state(1)[0])

    def wrap(self, model: torch.nn.Module) -> torch.nn.Module:
        """``model`` in DistributedDataParallel (gradients averaged over the ranks); itself alone.

        DDP starts every replica from rank 0's weights and, before each forward pass, copies
        rank 0's BatchNorm statistics; each rank normalises with its own batch's (no
        SyncBatchNorm: the recipe's per-process batch is what single-GPU training used).
        """
        if self.size == 1:
            return model
        device = next(model.parameters()).device
        ids = [device] if device.type == "cuda" else None
        return torch.nn.parallel.DistributedDataParallel(model, device_ids=ids)

    def from_main(self, values: Sequence[float]) -> tuple[float, ...]:
        """Rank 0's ``values`` on every rank (its clock, stop flag and validation figures)."""
        if self.size == 1:
            return tuple(values)
        t = torch.tensor(list(values), dtype=torch.float64, device=self._comm_device())
        dist.broadcast(t, src=0)
        return tuple(t.tolist())

    def mean(self, value: float) -> float:
        """The mean of ``value`` over the ranks (the step's loss over the whole batch)."""
        if self.size == 1:
            return value
        t = torch.tensor([value], dtype=torch.float64, device=self._comm_device())
        dist.all_reduce(t)
        return t.item() / self.size

    def sync_buffers(self, model: torch.nn.Module) -> None:
        """Copy rank 0's buffers (BatchNorm running statistics) to every rank."""
        if self.size > 1:
            for buffer in model.buffers():
                dist.broadcast(buffer.data, src=0)

    def identical(self, model: torch.nn.Module) -> bool | None:
        """Whether every rank holds the same weights and buffers, bit for bit; None alone."""
        if self.size == 1:
            return None
        digest = hashlib.sha256()
        for name, value in sorted(model.state_dict().items()):
            digest.update(name.encode())
            digest.update(value.detach().cpu().contiguous().reshape(-1).view(torch.uint8).numpy().tobytes())
        mine = torch.tensor([int.from_bytes(digest.digest()[:8], "little", signed=True)],
                            device=self._comm_device())
        every = [torch.empty_like(mine) for _ in range(self.size)]
        dist.all_gather(every, mine)
        return all(torch.equal(other, mine) for other in every)

    def describe(self) -> str:
        """``"2 processes (gloo)"``, for progress lines and provenance."""
        return f"{self.size} processes ({self.backend})"

    def _comm_device(self) -> torch.device:
        return torch.device("cuda", self.local_rank) if self.backend == "nccl" else torch.device("cpu")


def current() -> Group:
    """The group this process trains in: the running process group's, or rank 0 of 1."""
    if not (dist.is_available() and dist.is_initialized()):
        return Group()
    rank, size = dist.get_rank(), dist.get_world_size()
    local = int(os.environ.get("LOCAL_RANK", rank % max(1, torch.cuda.device_count())))
    return Group(rank, size, local, dist.get_backend())


@contextmanager
def session(device: str | torch.device | None = None) -> Iterator[Group]:
    """Start the process group torchrun's environment describes, yield this rank's group, end it.

    Without WORLD_SIZE > 1 (a plain run), or with a group already running, nothing is
    started or ended. ``device`` is what training will use: CUDA means nccl and one GPU
    per rank, the CPU gloo.

    Raises
    ------
    ValueError
        If the device cannot be shared this way (MPS), or this machine has fewer GPUs than
        processes.
    """
    if int(os.environ.get("WORLD_SIZE", "1")) <= 1 or dist.is_initialized():
        yield current()
        return
    dev = resolve_device(device)
    local = int(os.environ.get("LOCAL_RANK", "0"))
    if dev.type not in ("cuda", "cpu"):
        raise ValueError(f"several processes train on CUDA GPUs (nccl) or CPUs (gloo), not {dev.type}; "
                         "give --device cuda or --device cpu")
    if dev.type == "cuda":
        if local >= torch.cuda.device_count():
            raise ValueError(f"process {local} on this machine has no GPU of its own ({torch.cuda.device_count()} "
                             "here); start at most that many with --nproc_per_node")
        torch.cuda.set_device(local)
    dist.init_process_group("nccl" if dev.type == "cuda" else "gloo")  # env://: torchrun's MASTER_ADDR/PORT
    try:
        yield current()
    finally:
        dist.destroy_process_group()
