"""The scheduler: wakes due runs and carries out outbox items, embedded in `serve` or as `worker`."""

from jornada.channels.delivery import Courier, deliver_due
from jornada.scheduler.worker import Worker, dispatch_due, run_due, tick

__all__ = ["Courier", "Worker", "deliver_due", "dispatch_due", "run_due", "tick"]
