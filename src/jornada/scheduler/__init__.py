"""The scheduler: wakes due runs and carries out outbox items, embedded in `serve` or as `worker`."""

from jornada.scheduler.worker import Worker, dispatch_due, run_due, tick

__all__ = ["Worker", "dispatch_due", "run_due", "tick"]
