"""Ready tasks: a prompt template, a response_format, a grader and a loader, producing OpenAI RFT rows.

- `get_task(name) -> Task`; `list_tasks()` names them and says which can load here;
- `default_task()`: `eurovoc` (real legal acts) when the shared data folder is present, otherwise
  `eurovoc-offline` (built from the EuroVoc thesaurus on PyPI), saying which it chose;
- `export_task(name, out_dir)` writes train/validation JSONL plus grader and response_format JSON that
  any RFT service accepts.
"""

from __future__ import annotations

from typing import Callable

from openrft.tasks import eurovoc, eurovoc_offline, gsm8k, unfair_tos
from openrft.tasks.base import SPLITS, Task, TaskError
from openrft.tasks.export import export_task

_TASKS: dict[str, Callable[[], Task]] = {
    "eurovoc": eurovoc.task,
    "eurovoc-offline": eurovoc_offline.task,
    "gsm8k": gsm8k.task,
    "unfair-tos": unfair_tos.task,
}


def get_task(name: str) -> Task:
    """The task called `name` (see `list_tasks`)."""
    if name not in _TASKS:
        raise TaskError(f"unknown task {name!r} (tasks: {', '.join(_TASKS)})")
    return _TASKS[name]()


def task_available(name: str) -> tuple[bool, str]:
    """Whether a task's data is on this machine, and where it comes from or what is missing."""
    from openrft.paths import shared_data_dir

    task = get_task(name)
    if name == "eurovoc-offline":
        try:
            eurovoc_offline.descriptors()
        except TaskError as exc:
            return False, str(exc)
        return True, task.source
    folder = {"eurovoc": "eurovoc", "gsm8k": "gsm8k", "unfair-tos": "unfair_tos"}[name]
    data = shared_data_dir()
    if data is None or not (data / folder).is_dir():
        return False, f"needs the real data folder ({folder}/ in ../shared/data or $OPENRFT_DATA_DIR)"
    return True, task.source


def list_tasks() -> list[dict]:
    """Every task: name, description, whether it can load here, its data source (or what is missing), its label
    count and its prompt variants."""
    result = []
    for name in _TASKS:
        task = get_task(name)
        available, detail = task_available(name)
        result.append({"name": name, "description": task.description, "available": available, "source": detail,
                       "labels": len(task.labels) if task.labels else 0, "prompts": list(task.prompts)})
    return result


def default_task(*, quiet: bool = False) -> Task:
    """`eurovoc` when the real data folder is present, else `eurovoc-offline`; prints which (to stderr)."""
    available, _ = task_available("eurovoc")
    task = get_task("eurovoc" if available else "eurovoc-offline")
    if not quiet:
        from rich.console import Console

        reason = "" if available else " (the real data folder was not found)"
        Console(stderr=True, soft_wrap=True).print(
            f"[bold]openrft[/]: task [cyan]{task.name}[/]{reason}: {task.source}")
    return task


__all__ = ["SPLITS", "Task", "TaskError", "default_task", "export_task", "get_task", "list_tasks", "task_available"]
