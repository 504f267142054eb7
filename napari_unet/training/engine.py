"""The training engine: a generator that yields progress after every step.

The loop reads in order: schedule -> eval/checkpoint -> forward/backward -> log.
``train_iter`` is what a napari worker runs (stop and pause act between yields);
``train`` runs it to the end for scripts, the CLI and tests. Started by ``torchrun``
(a process group running, see :mod:`.parallel`), every process runs the same loop on
its own patches and the replicas stay identical.
"""

from __future__ import annotations

import math
import threading
import time
from collections.abc import Callable, Generator, Sequence
from dataclasses import dataclass, field, replace

import numpy as np
import torch

from napari_unet.devices import resolve_device
from napari_unet.inference.predict import memory_format as memory_format_for
from napari_unet.model.checkpoint import load_state, model_path, save_state, state_path
from napari_unet.model.files import ModelFileError, load_model, save_model
from napari_unet.model.unet import UNet
from napari_unet.progress import run
from napari_unet.training import parallel
from napari_unet.training.augment import AugmentConfig
from napari_unet.training.batches import Batch, PatchSampler
from napari_unet.training.evaluation import ValImage, evaluate
from napari_unet.training.losses import LossConfig, segmentation_loss
from napari_unet.training.sources import Source
from napari_unet.training.targets import TargetConfig

# Builds the step's batch source from the data, the config and the run's generator
# (so resumed runs continue its state); the default cuts instance patches.
BatchFactory = Callable[[Source, "TrainConfig", np.random.Generator], Callable[[], Batch]]


@dataclass(frozen=True)
class TrainConfig:
    """Everything that decides a training run; budgets end it at whichever comes first."""

    steps: int = 2000  # step budget: optimiser updates
    max_seconds: float | None = None  # time budget in seconds (wall clock, eval included)
    batch_size: int = 4  # patches per step (per process under torchrun); BatchNorm wants >= 4
    patch_size: int = 256  # patch edge; with depth 4 the receptive field (~180 px) fits inside
    lr: float = 2e-3  # peak AdamW learning rate
    min_lr: float = 2e-5  # the cosine schedule decays to this
    warmup: float = 0.03  # fraction of the budget for the linear warm-up (unless warmup_steps)
    # warm-up counted in optimiser steps instead (0: use ``warmup``): a time budget on a busy
    # machine can end a fractional warm-up after one step, and fine-tuning's first steps at
    # the full rate are the ones that lose quality
    warmup_steps: int = 0
    weight_decay: float = 1e-4  # AdamW's decoupled weight decay
    grad_clip: float = 1.0  # max gradient norm; rare bad batches cannot wreck the weights
    val_every: int = 200  # steps between evaluations / checkpoints (0 = only at the end)
    seed: int = 0  # seeds numpy (windows, images) and torch (init-free jitter, dropout)
    threads: int | None = None  # torch CPU threads; None leaves torch's setting (all cores)
    checkpoint: str | None = None  # best model file (.safetensors); resume state beside it
    resume: str | None = None  # checkpoint (or its .state.pt) to continue from
    freeze_encoder: bool = False  # fine-tuning: train only the decoder and head
    freeze_norm: bool = False  # fine-tuning on few images: keep BatchNorm statistics fixed
    loss_smoothing: float = 0.98  # EMA of the loss, the metric when there is no validation set
    # "wall": the time budget is wall-clock seconds; "cpu": this process's CPU seconds per torch
    # thread, what a dedicated machine of that many cores would take (benchmarks on a shared one)
    clock: str = "wall"
    augment: AugmentConfig = field(default_factory=AugmentConfig)  # see augment.py
    targets: TargetConfig = field(default_factory=TargetConfig)  # see targets.py
    loss: LossConfig = field(default_factory=LossConfig)  # see losses.py


@dataclass(frozen=True)
class TrainProgress:
    """What a step did; ``val_*`` only on steps that evaluated."""

    step: int  # steps done so far (1 after the first update)
    loss: float  # this step's training loss
    seconds: float  # wall-clock time since training began (resumed runs continue)
    lr: float  # learning rate used by this step
    val_ap50: float | None = None  # AP at IoU 0.5 on the validation set
    val_ap75: float | None = None  # AP at IoU 0.75
    run: int = 0  # which training of a job made it (fine-tuning's two halves: 0, then 1 on a fresh copy)


@dataclass(frozen=True)
class TrainResult:
    """The trained model (best weights loaded) and how it got there."""

    model: UNet
    best_metric: float  # mean of AP@0.5 and AP@0.75, or -smoothed loss without validation
    best_step: int  # step whose weights were kept
    steps: int  # steps done
    seconds: float  # wall-clock time, resumed runs included
    history: list[TrainProgress]
    stopped: bool = False  # True if ended by the stop event
    processes: int = 1  # processes that trained it together (torchrun), see parallel.py
    replicas_identical: bool | None = None  # several processes: all ended with the same weights


def learning_rate(config: TrainConfig, fraction: float, step: int = 0) -> float:
    """Linear warm-up, then cosine decay to ``min_lr``, over the fraction of the budget used.

    With ``config.warmup_steps`` the warm-up counts steps (``step``: those done before this
    one) and the cosine spans the whole budget: the rate is the cosine's times
    ``(step + 1) / warmup_steps`` until then, whatever the clock says.
    """
    if config.warmup_steps:
        t = min(1.0, max(0.0, fraction))
        cosine = config.min_lr + 0.5 * (config.lr - config.min_lr) * (1.0 + math.cos(math.pi * t))
        return cosine * min(1.0, (step + 1) / config.warmup_steps)
    if fraction < config.warmup:
        return config.lr * max(fraction / config.warmup, 0.01)
    t = min(1.0, (fraction - config.warmup) / max(1e-9, 1.0 - config.warmup))
    return config.min_lr + 0.5 * (config.lr - config.min_lr) * (1.0 + math.cos(math.pi * t))


def _set_train_mode(model: UNet, config: TrainConfig) -> None:
    model.train()
    if config.freeze_norm:
        for m in model.modules():
            if isinstance(m, torch.nn.modules.batchnorm._BatchNorm):
                m.eval()


def _trainable(model: UNet, config: TrainConfig) -> list[torch.nn.Parameter]:
    frozen = set()
    if config.freeze_encoder:
        frozen = {id(p) for part in (model.inc, model.downs) for p in part.parameters()}
    params = []
    for p in model.parameters():
        p.requires_grad_(id(p) not in frozen)
        if p.requires_grad:
            params.append(p)
    return params


def train_iter(
    model: UNet,
    data: Source,
    config: TrainConfig = TrainConfig(),
    *,
    device: str | torch.device | None = None,
    stop: threading.Event | None = None,
    val: Sequence[tuple[np.ndarray, np.ndarray] | ValImage] | None = None,
    batches: BatchFactory | None = None,
) -> Generator[TrainProgress, None, TrainResult]:
    """Train ``model`` on samples from ``data``, yielding :class:`TrainProgress` after each step.

    Parameters
    ----------
    model
        The network to train, in place (a fresh :class:`UNet` or a loaded model to
        fine-tune).
    data
        A source of samples (:class:`~napari_unet.training.sources.ArraySource`,
        :class:`~napari_unet.training.sources.SynthSource`, :func:`~napari_unet.training.sources.load_folder`).
    config
        Budgets, optimiser, schedule, checkpointing; see :class:`TrainConfig`.
    device
        Where to train; ``None`` picks the fastest available.
    stop
        Set it (from any thread) to end training after the current step.
    val
        Held-out (image, labels) pairs or :class:`ValImage`: AP@0.5/0.75 every ``val_every`` steps picks the
        best weights. Without it the smoothed training loss does.
    batches
        Makes the batch source for another task (the click network's, see
        :mod:`napari_unet.clicks.train`); ``None`` cuts instance-segmentation patches.

    Returns
    -------
    TrainResult
        With the best weights loaded into ``model``.

    Notes
    -----
    In a running process group (``torchrun``) each process takes its own patches
    (``batch_size`` of them) and its own GPU, gradients are averaged, rank 0's clock and
    ``stop`` end the run for all, and only rank 0 evaluates and writes the checkpoint.
    """
    if config.steps < 1 and config.max_seconds is None:
        raise ValueError("give a step budget (steps >= 1) or a time budget (max_seconds)")
    if config.max_seconds is not None and not config.max_seconds > 0:  # 0 or less would never end
        raise ValueError(f"the time budget must be more than 0 seconds, got max_seconds={config.max_seconds:g}")
    ranks = parallel.current()
    dev = ranks.device(resolve_device(device))
    old_threads = torch.get_num_threads()
    if config.threads:
        torch.set_num_threads(config.threads)
    torch.manual_seed(ranks.seed(config.seed))
    rng = np.random.default_rng(ranks.seed(config.seed))
    sampler = (batches or _patch_sampler)(data, config, rng)
    dims = getattr(model.config, "spatial_dims", 2) + 2  # 3D networks stay contiguous (see memory_format)
    memory_format = memory_format_for(dims) if dev.type == "cpu" else torch.preserve_format
    model.to(dev).to(memory_format=memory_format)
    optimizer = torch.optim.AdamW(_trainable(model, config), lr=config.lr, weight_decay=config.weight_decay)
    run_state = _RunState()
    if config.resume:
        run_state = _resume(config.resume, model, optimizer, rng)
        if not ranks.main:  # the state holds rank 0's generators; draw other patches
            seed = ranks.seed(config.seed, run_state.step)
            torch.manual_seed(seed)
            rng.bit_generator.state = np.random.default_rng(seed).bit_generator.state
    net = ranks.wrap(model)  # DistributedDataParallel under torchrun; the model itself alone
    _set_train_mode(model, config)
    history: list[TrainProgress] = []
    step, last_eval = run_state.step, run_state.step
    now = _clock(config)
    start = now() - run_state.seconds
    try:
        while True:
            # schedule: the fraction of the budget used, by steps or by time, whichever is further
            fraction = step / config.steps if config.steps else 0.0
            if config.max_seconds:
                fraction = max(fraction, (now() - start) / config.max_seconds)
            fraction, halt = ranks.from_main((fraction, stop is not None and stop.is_set()))  # rank 0's, for all
            stopped = bool(halt)
            finished = fraction >= 1.0
            lr = learning_rate(config, fraction, step)
            # eval / checkpoint: on schedule, and once more at the end of the budget
            due = config.val_every and step % config.val_every == 0
            if step > last_eval and (due or finished) and not stopped:
                last_eval = step
                ap = _evaluate_and_checkpoint(model, optimizer, rng, config, run_state, step, val, dev,
                                              now() - start, ranks)
                if ap is not None and history:
                    history[-1] = replace(history[-1], val_ap50=ap[0], val_ap75=ap[1])
                    # the step's record again, now with its validation figures
                    start += yield from _timed_yield(history[-1], now)
            if stopped and config.checkpoint and step > last_eval and ranks.main:  # resumable from here
                _save_resume_state(model, optimizer, rng, config, run_state, step, now() - start)
            if finished or stopped:
                break
            # forward / backward
            for group in optimizer.param_groups:
                group["lr"] = lr
            batch = sampler()
            x = batch.images.to(dev, non_blocking=True).contiguous(memory_format=memory_format)
            loss = segmentation_loss(net(x), batch.classes.to(dev), batch.weights.to(dev), config.loss)
            optimizer.zero_grad(set_to_none=True)
            loss.backward()
            if config.grad_clip:
                torch.nn.utils.clip_grad_norm_(model.parameters(), config.grad_clip)
            optimizer.step()
            # log
            step += 1
            value = ranks.mean(float(loss.detach()))  # over the whole batch: the same on every rank
            run_state.smooth(value, config.loss_smoothing)
            history.append(TrainProgress(step, value, now() - start, lr))
            start += yield from _timed_yield(history[-1], now)
    finally:
        torch.set_num_threads(old_threads)
    ranks.sync_buffers(model)
    if run_state.best_weights is None:  # never evaluated (stopped early): keep what we have
        run_state.best_step, run_state.best_weights = step, _copy_state(model)
    model.load_state_dict(run_state.best_weights)
    model.eval()
    return TrainResult(model, run_state.best_metric, run_state.best_step, step, now() - start, history, stopped,
                       ranks.size, ranks.identical(model))


def _clock(config: TrainConfig) -> Callable[[], float]:
    """The clock the time budget runs on (see TrainConfig.clock)."""
    if config.clock == "wall":
        return time.perf_counter
    if config.clock == "cpu":
        return lambda: time.process_time() / max(1, torch.get_num_threads())
    raise ValueError(f"clock must be 'wall' or 'cpu', got {config.clock!r}")


def _timed_yield(
    record: TrainProgress, now: Callable[[], float] = time.perf_counter
) -> Generator[TrainProgress, None, float]:
    """Yield ``record``; return the seconds spent suspended, which the time budget skips
    (a paused napari worker does not advance the generator).
    """
    suspended = now()
    yield record
    return now() - suspended


def train(model: UNet, data: Source, config: TrainConfig = TrainConfig(), **kwargs) -> TrainResult:
    """Run :func:`train_iter` to the end; takes the same arguments."""
    return run(train_iter(model, data, config, **kwargs))


def _patch_sampler(data: Source, config: TrainConfig, rng: np.random.Generator) -> PatchSampler:
    return PatchSampler(data, config.patch_size, config.batch_size, config.augment, config.targets, rng)


@dataclass
class _RunState:
    """Counters that survive a resume, and the best weights so far."""

    step: int = 0
    seconds: float = 0.0
    best_metric: float = -math.inf
    best_step: int = 0
    ema: float | None = None  # smoothed training loss
    best_weights: dict | None = None

    def smooth(self, loss: float, factor: float) -> None:
        self.ema = loss if self.ema is None else factor * self.ema + (1 - factor) * loss


def _evaluate_and_checkpoint(model, optimizer, rng, config, st: _RunState, step, val, dev, seconds, ranks):
    """Score the current weights, keep them if best, write the checkpoint; return the APs.

    Under torchrun every rank keeps rank 0's BatchNorm statistics and figures, so all keep the same weights.
    """
    ranks.sync_buffers(model)
    ap = None
    metric = -st.ema if st.ema is not None else -math.inf
    if val:
        ap = ranks.from_main(evaluate(model, val, dev) if ranks.main else (0.0, 0.0))
        metric = (ap[0] + ap[1]) / 2
        _set_train_mode(model, config)
    if metric >= st.best_metric:
        st.best_metric, st.best_step, st.best_weights = metric, step, _copy_state(model)
        if config.checkpoint and ranks.main:
            extra = {"val_ap50": ap[0], "val_ap75": ap[1]} if ap else {}
            save_model(model, model_path(config.checkpoint), steps=step, seconds=round(seconds, 1), **extra)
    if config.checkpoint and ranks.main:
        _save_resume_state(model, optimizer, rng, config, st, step, seconds)
    return ap


def _save_resume_state(model, optimizer, rng, config, st: _RunState, step, seconds) -> None:
    save_state(state_path(config.checkpoint), model, optimizer, rng, step=step, seconds=seconds,
               best_metric=st.best_metric, best_step=st.best_step, ema=st.ema)


def _resume(checkpoint, model, optimizer, rng) -> _RunState:
    info = load_state(checkpoint, model, optimizer, rng)
    counters = ("step", "seconds", "best_metric", "best_step", "ema")
    missing = [key for key in counters if key not in info]
    if missing:  # a state written by something else, or edited by hand
        raise ModelFileError(f"{state_path(checkpoint)}: the resume state lacks {', '.join(missing)}; "
                             "resume from a state file written by `napari-unet train`, or start anew")
    st = _RunState(*(info[key] for key in counters))
    best_file = model_path(checkpoint)
    if best_file.exists():
        best = load_model(best_file)
        st.best_weights = {k: v.to(next(model.parameters()).device) for k, v in best.state_dict().items()}
    return st


def _copy_state(model: UNet) -> dict[str, torch.Tensor]:
    return {k: v.detach().clone() for k, v in model.state_dict().items()}
