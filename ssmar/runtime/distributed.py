"""Thin helpers over ``torch.distributed`` that are no-ops in a single process.

``torchrun`` sets RANK/WORLD_SIZE/LOCAL_RANK (and MASTER_ADDR/PORT for multi-node); we
pick NCCL on CUDA and gloo on CPU. Collectives accept tensors on any device: NCCL only
moves CUDA tensors, so CPU tensors (diagnostic counters, APLT's pseudo-label tables) go
through a CUDA copy there. See docs/distributed.md.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from typing import Any, Callable, TypeVar

import torch
import torch.distributed as dist
import torch.nn as nn
from torch.nn.modules.batchnorm import _BatchNorm

T = TypeVar("T")


@dataclass(frozen=True)
class DistInfo:
    rank: int = 0
    world_size: int = 1
    local_rank: int = 0

    @property
    def is_main(self) -> bool:
        return self.rank == 0


def init_distributed(device: str) -> DistInfo:
    world_size = int(os.environ.get("WORLD_SIZE", "1"))
    if world_size <= 1:
        return DistInfo()
    if not dist.is_initialized():
        dist.init_process_group(backend="nccl" if device.startswith("cuda") else "gloo")
    return DistInfo(rank=dist.get_rank(), world_size=dist.get_world_size(),
                    local_rank=int(os.environ.get("LOCAL_RANK", "0")))


def shutdown() -> None:
    """Tear the process group down after a finished run (NCCL warns when it is left alive), once
    every process is done: rank 0 may still be writing the final files when the others finish."""
    if dist.is_available() and dist.is_initialized():
        dist.barrier()
        dist.destroy_process_group()


def active() -> bool:
    return dist.is_available() and dist.is_initialized() and dist.get_world_size() > 1


def _backend_device() -> torch.device:
    return torch.device("cuda", torch.cuda.current_device()) if dist.get_backend() == "nccl" else torch.device("cpu")


def _backend_dtype(dtype: torch.dtype) -> torch.dtype:
    return torch.uint8 if dtype == torch.bool else dtype


def _through_backend(tensor: torch.Tensor, collective: Callable[[torch.Tensor], Any]) -> torch.Tensor:
    """Run an in-place ``collective`` on ``tensor``, via a copy where the backend needs another
    device (NCCL: CUDA) or dtype (bool travels as uint8)."""
    device, dtype = _backend_device(), _backend_dtype(tensor.dtype)
    if tensor.device == device and tensor.dtype == dtype:
        collective(tensor)
        return tensor
    work = tensor.to(device, dtype)
    collective(work)
    tensor.copy_(work)
    return tensor


def all_reduce_sum(tensor: torch.Tensor) -> torch.Tensor:
    """Sum ``tensor`` over processes in place (and return it)."""
    if active():
        _through_backend(tensor, lambda t: dist.all_reduce(t, op=dist.ReduceOp.SUM))
    return tensor


def mean_over_processes(value: torch.Tensor) -> torch.Tensor:
    """The mean of a (detached) statistic over processes; ``value`` itself in one process.

    A loss normalised by a data-dependent count (a weighted mean) and divided by this mean of
    the per-process counts averages, over processes, to the global weighted mean, which is
    what DDP's gradient averaging then optimises.
    """
    value = value.detach()
    if not active():
        return value
    return all_reduce_sum(value.clone()) / dist.get_world_size()


def all_gather_cat(tensor: torch.Tensor) -> torch.Tensor:
    """Concatenate each process's ``tensor`` (sizes may differ along dim 0) in rank order."""
    if not active():
        return tensor
    sizes = torch.zeros(dist.get_world_size(), dtype=torch.long)
    sizes[dist.get_rank()] = len(tensor)
    all_reduce_sum(sizes)
    padded = torch.zeros((int(sizes.max()), *tensor.shape[1:]), dtype=_backend_dtype(tensor.dtype),
                         device=_backend_device())
    padded[: len(tensor)] = tensor
    gathered = [torch.empty_like(padded) for _ in range(len(sizes))]
    dist.all_gather(gathered, padded)
    return torch.cat([part[: int(size)] for part, size in zip(gathered, sizes)]).to(tensor.device, tensor.dtype)


def broadcast_(tensor: torch.Tensor, src: int = 0) -> torch.Tensor:
    """Overwrite ``tensor`` in place with process ``src``'s copy."""
    if active():
        _through_backend(tensor, lambda t: dist.broadcast(t, src=src))
    return tensor


def broadcast_object(obj: T, src: int = 0) -> T:
    """Process ``src``'s ``obj`` (any picklable value, e.g. a checkpoint read only there)."""
    if not active():
        return obj
    holder = [obj]
    dist.broadcast_object_list(holder, src=src)
    return holder[0]


def broadcast_buffers(module: nn.Module, src: int = 0) -> None:
    """Give every process ``src``'s buffers (BatchNorm running statistics). Under DDP with plain
    BatchNorm each process updates them from its own slice, so they drift apart between forwards."""
    for buffer in module.buffers():
        broadcast_(buffer, src)


def barrier() -> None:
    if active():
        dist.barrier()


class _AllReduceSum(torch.autograd.Function):
    """Sum over processes whose gradient is again the sum over processes (for global statistics)."""

    @staticmethod
    def forward(ctx: Any, tensor: torch.Tensor) -> torch.Tensor:
        return all_reduce_sum(tensor.clone())

    @staticmethod
    def backward(ctx: Any, grad: torch.Tensor) -> torch.Tensor:
        return all_reduce_sum(grad.clone())


class GlobalBatchNorm(_BatchNorm):
    """BatchNorm whose training statistics span the global batch of all processes (``train.sync_bn``).

    Unlike ``nn.SyncBatchNorm`` it runs on any device and backend (gloo on CPU included), so the
    CPU parity test exercises the code GPUs run. Mean and variance are reduced in two passes
    (sum, then squared deviations) through a differentiable all-reduce; outside training, or in
    one process, it is plain BatchNorm. Parameter and buffer names are BatchNorm's, so
    checkpoints load into models without it.
    """

    def _check_input_dim(self, input: torch.Tensor) -> None:
        if input.dim() < 2:
            raise ValueError(f"expected at least 2-D input (got {input.dim()}-D)")

    def forward(self, input: torch.Tensor) -> torch.Tensor:
        self._check_input_dim(input)
        if not (self.training and active()):
            return super().forward(input)
        x = input.float()
        dims = [0, *range(2, x.dim())]
        shape = [1, -1] + [1] * (x.dim() - 2)
        # One collective for the sums and the sample count (float32 counts are exact below 2**24).
        totals = _AllReduceSum.apply(torch.cat([x.sum(dims), x.new_tensor([x.numel() // x.shape[1]])]))
        count = totals[-1].detach()
        mean = totals[:-1] / count
        centred = x - mean.view(shape)
        var = _AllReduceSum.apply(centred.square().sum(dims)) / count
        out = centred * torch.rsqrt(var + self.eps).view(shape)
        if self.affine:
            out = out * self.weight.view(shape) + self.bias.view(shape)
        if self.track_running_stats:
            with torch.no_grad():
                self.num_batches_tracked.add_(1)
                factor = self.momentum if self.momentum is not None else 1.0 / float(self.num_batches_tracked)
                self.running_mean.lerp_(mean.detach().to(self.running_mean.dtype), factor)
                unbiased = var.detach() * (count / (count - 1).clamp(min=1))
                self.running_var.lerp_(unbiased.to(self.running_var.dtype), factor)
        return out.to(input.dtype)


def convert_sync_batchnorm(module: nn.Module) -> nn.Module:
    """``module`` with every BatchNorm replaced by :class:`GlobalBatchNorm` (parameters and buffers shared)."""
    if isinstance(module, _BatchNorm) and not isinstance(module, GlobalBatchNorm):
        converted = GlobalBatchNorm(module.num_features, module.eps, module.momentum, module.affine,
                                    module.track_running_stats)
        for name, value in [*module.named_parameters(recurse=False), *module.named_buffers(recurse=False)]:
            setattr(converted, name, value)
        converted.train(module.training)
        return converted
    for name, child in module.named_children():
        module.add_module(name, convert_sync_batchnorm(child))
    return module
