"""Sales CRM: tasks with SLAs for the people who work the leads."""

from jornada.crm.models import Member, Task

__all__ = ["Member", "Task"]
