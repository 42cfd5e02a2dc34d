"""Pulumi components of the Klippers cloud engine (composed by ``infra/__main__.py``)."""

from klippers_infra.image import JobImage
from klippers_infra.jobs import Jobs, child_spec, parent_spec, shard_spec
from klippers_infra.network import TaskNetwork
from klippers_infra.notifications import Notifications
from klippers_infra.pipeline import Pipeline
from klippers_infra.storage import Warehouse
from klippers_infra.tasks import LLMSettings, child_capacity, job_sizes, task_size

__all__ = [
    "JobImage",
    "Jobs",
    "LLMSettings",
    "Notifications",
    "Pipeline",
    "TaskNetwork",
    "Warehouse",
    "child_capacity",
    "child_spec",
    "job_sizes",
    "parent_spec",
    "shard_spec",
    "task_size",
]
