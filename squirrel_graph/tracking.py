"""Small adapters for sending monitor metrics to experiment trackers (wandb, mlflow)."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any


class WithStep:
    """Calls ``log(metrics, step=n, **kwargs)`` with n = start, start+1, ... (one series step per monitor call).

    Use it for ``mlflow.log_metrics``, whose steps are kept per metric key. For ``wandb.log`` pass ``wandb.log``
    itself: wandb numbers steps per run, so two monitors with their own counters would collide.
    """

    def __init__(self, log: Callable[..., Any], start: int = 0) -> None:
        if not callable(log):
            raise TypeError(f"WithStep(log=...): expected a callable, got {type(log).__name__}")
        self.log = log
        self.step = start

    def __call__(self, metrics: dict[str, float], **kwargs: Any) -> Any:
        out = self.log(metrics, step=self.step, **kwargs)
        self.step += 1
        return out
