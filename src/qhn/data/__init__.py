"""Tasks: data (or a precomputed cost vector) and a binary network, built by name with a seed.

``get_task("digits01", seed=3)`` builds a registered task; :data:`TASKS` lists the names. The
builders live in :mod:`qhn.data.synthetic`, :mod:`qhn.data.digits`, :mod:`qhn.data.tabular` and
:mod:`qhn.data.cost_vector` and are imported only when a task of theirs is built.
"""

from qhn.data.arrays import from_arrays, from_cost_function
from qhn.data.tasks import TASKS, Task, TaskBuilder, get_task, task_options

__all__ = [
    "TASKS",
    "Task",
    "TaskBuilder",
    "from_arrays",
    "from_cost_function",
    "get_task",
    "task_options",
]
