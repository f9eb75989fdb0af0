"""Executors: the only place where processes start.

Objects build :class:`~netns_kit.command.Command` values; the runner
(:mod:`netns_kit.engine.runner`) decides what to start and hands each process to an
:class:`Executor`.  Swapping the executor swaps the world:

- :class:`ShellExecutor` (``shell``): the real kernel;
- :class:`RecordingExecutor` and :class:`ScriptExecutor` (``dry``): the unit tests'
  fake, and the dry run's bash script;
- :class:`SandboxExecutor` (``sandbox``): a rootless lab's user namespace, through nsenter;
- :class:`SSHExecutor` (``ssh``): another machine, over OpenSSH;
- :class:`RoutingExecutor` (``dispatch``): a lab on several machines, each command to
  its machine's executor.

``detached`` starts many background programs at once, one launcher a machine
(:func:`start_detached`: routing daemons).  ``batch`` writes batch text and splits
batch output, ``probes`` and ``pinger`` are the ICMP probes an executor may send
itself.  Nothing outside this package imports ``sh`` or ``subprocess``.
"""

from netns_kit.executors.attached import run_attached
from netns_kit.executors.base import (
    Executor,
    Process,
    Watching,
    inherit_in_children,
    inherited_fds,
    interact,
    quiet_thread,
    stop_inheriting,
)
from netns_kit.executors.default import default_executor, use_executor
from netns_kit.executors.detached import start_detached
from netns_kit.executors.dry import RecordingExecutor, ScriptExecutor
from netns_kit.executors.shell import ShellExecutor

__all__ = [
    "Executor",
    "Process",
    "RecordingExecutor",
    "ScriptExecutor",
    "ShellExecutor",
    "Watching",
    "default_executor",
    "inherit_in_children",
    "inherited_fds",
    "interact",
    "quiet_thread",
    "run_attached",
    "start_detached",
    "stop_inheriting",
    "use_executor",
]
