"""Commands are values.

A :class:`Command` is an immutable argv tuple plus what the layers above the executor
need to know about it, decided once, where the command is built: its stdin, the
namespace it acts in, whether it only reads, an optional guard, and how else it may
run.  Objects build commands in pure methods, so a unit test can pin the exact argv
and a dry run can print the exact script; only an executor starts them.

"How else it may run" is what keeps argv from ever being read back to learn what a
command is:

* ``inside`` is the same command as started from a thread that has already entered
  ``namespace`` (``ip link ...`` for ``ip -n NS link ...``, ``sysctl ...`` for ``ip
  netns exec NS sysctl ...``).  An executor that can enter namespaces with setns(2)
  starts that instead, which avoids copying the mount table on every call.
* ``family`` and ``line`` say which batch program can take it (``ip`` or ``tc``) and
  the words of its batch line.  Reads, guarded commands and commands with stdin are
  never batched.
* ``sysctls`` says the command only writes kernel settings of ``namespace``: an
  executor with a thread inside the namespace may write them to ``/proc/sys`` itself
  instead of starting the program (no process, no copy of the mount table).

``machine`` says which machine of a lab spread over several it runs on
(:mod:`netns_kit.lab.machines`); the planner never puts commands of two machines in one
lane or batch.
"""

from __future__ import annotations

import shlex
from collections.abc import Iterable

import attrs


def _argv(value: Iterable[str]) -> tuple[str, ...]:
    return tuple(value)


def _words(value: Iterable[str] | None) -> tuple[str, ...] | None:
    return None if value is None else tuple(value)


@attrs.frozen
class Command:
    """One process to start: ``argv`` is exactly what is executed, no shell involved.

    ``namespace`` names the network namespace the command acts in (the argv already
    says so, e.g. ``ip -n red ...``); it is kept apart so that the planner can group
    commands by where they run.  ``read`` marks a command that changes nothing: a dry
    run answers it as a fresh machine would.  ``unless`` is a check-then-act guard:
    the command runs only when the guard fails (``guard || command`` in a script).
    """

    argv: tuple[str, ...] = attrs.field(converter=_argv)
    stdin: str | None = None
    namespace: str | None = None
    read: bool = False
    unless: Command | None = None
    inside: tuple[str, ...] | None = attrs.field(default=None, converter=_words, repr=False)
    family: str | None = attrs.field(default=None, repr=False)
    line: tuple[str, ...] | None = attrs.field(default=None, converter=_words, repr=False)
    #: The machine it runs on, by the lab's name for it (``None``: the lab's only, or
    #: first, machine).  Objects never set it: a lab spread over machines places its
    #: steps (:func:`netns_kit.engine.step.on_machine`), and its executor routes by it.
    machine: str | None = attrs.field(default=None, repr=False)
    #: The kernel module the command needs (``sch_netem``), named in the error when the
    #: kernel lacks it.
    needs: str | None = attrs.field(default=None, repr=False)
    #: The kernel settings (key, value) this command writes in ``namespace``, and
    #: nothing else: the same change as files of ``/proc/sys`` written from inside.
    sysctls: tuple[tuple[str, str], ...] | None = attrs.field(default=None, repr=False)
    #: With ``sysctls``: a setting this kernel lacks is no error (``sysctl -e``).
    missing_ok: bool = attrs.field(default=False, repr=False)
    #: The interface in ``namespace`` whose GRO this command turns on, and nothing
    #: else: an executor inside the namespace may use ethtool's ioctl itself.
    gro: str | None = attrs.field(default=None, repr=False)

    def __attrs_post_init__(self) -> None:
        if not self.argv:
            raise ValueError("a Command needs at least one argv element")

    def __str__(self) -> str:
        return shlex.join(self.argv)

    @property
    def tool(self) -> str:
        """The program this command starts (``ip``, ``iptables``...)."""
        return self.argv[0]

    @property
    def batchable(self) -> bool:
        """Whether a batch program may take this command as one of its lines."""
        return (
            self.family is not None
            and self.line is not None
            and not self.read
            and self.stdin is None
            and self.unless is None
        )

    def shell(self) -> str:
        """The command as a line of a bash script; stdin becomes a quoted heredoc."""
        line = shlex.join(self.argv)
        if self.stdin is None:
            return line
        tag = "NETNS_KIT_EOF"
        while tag in self.stdin.splitlines():
            tag += "_"
        body = self.stdin if self.stdin.endswith("\n") else self.stdin + "\n"
        return f"{line} <<'{tag}'\n{body}{tag}"


def _program(program: str, args: tuple[str, ...], namespace: str | None, read: bool) -> Command:
    """``program [-n NS] ARGS``: iproute2's own way into a namespace.  Global options
    (``-6``, ``-j``) cannot go on a batch line, so such commands are not batchable."""
    prefix: tuple[str, ...] = (program, "-n", namespace) if namespace else (program,)
    batchable = bool(args) and not args[0].startswith("-")
    return Command(
        prefix + args,
        namespace=namespace,
        read=read,
        inside=(program, *args) if namespace else None,
        family=program if batchable else None,
        line=args if batchable else None,
    )


def ip(*args: str, namespace: str | None = None, read: bool = False) -> Command:
    """An ``ip`` command, run in ``namespace`` through ``ip -n`` (cheaper than exec)."""
    return _program("ip", args, namespace, read)


def tc(*args: str, namespace: str | None = None, read: bool = False) -> Command:
    """A ``tc`` command, run in ``namespace`` through ``tc -n``; batched by ``tc -batch``."""
    return _program("tc", args, namespace, read)


def sysctl_command(
    settings: Iterable[tuple[str, str]], namespace: str, *, missing_ok: bool = False
) -> Command:
    """Kernel settings of ``namespace`` (checked keys and values), as one command.

    Its argv is ``ip netns exec NS sysctl [-e] -q -w KEY=VALUE...`` (what a dry run
    prints and what executors that cannot enter namespaces run), and it says what it
    writes (``sysctls``), so that the real kernel's executor writes the files of
    ``/proc/sys`` from a thread inside ``namespace`` instead: ``ip netns exec`` copies
    the whole mount table, one mount per namespace of the machine, which made a
    build of N namespaces O(N^2) (28.5 ms a call at 10,000 namespaces).  It is never a
    batch line, for the same reason.
    """
    pairs = tuple(settings)
    words = [f"{key}={value}" for key, value in pairs]
    argv = ("sysctl", *(("-e",) if missing_ok else ()), "-q", "-w", *words)
    return Command(
        ("ip", "netns", "exec", namespace, *argv),
        namespace=namespace,
        inside=argv,
        sysctls=pairs,
        missing_ok=missing_ok,
    )


def gro_command(device: str, namespace: str | None) -> Command:
    """``ethtool -K DEVICE gro on tso off`` in ``namespace`` (checked names), as one
    command.

    On a veth, GRO on gives the receiving end a NAPI queue of its own, which its
    peer uses when it has no TSO: frames a bridge floods no longer go through the
    CPU's shared backlog queue (``net.core.netdev_max_backlog``, 1,000), which a
    broadcast flooded to about 1,500 links overflowed here.  The real kernel's
    executor uses ethtool's ioctl from a thread inside the namespace (no process, no
    ``ethtool`` program); others run the argv.  Never a batch line.
    """
    argv = ("ethtool", "-K", device, "gro", "on", "tso", "off")
    if namespace is None:
        return Command(argv, gro=device)
    return Command(
        ("ip", "netns", "exec", namespace, *argv), namespace=namespace, inside=argv, gro=device
    )


def in_namespace(
    argv: Iterable[str],
    namespace: str | None,
    *,
    read: bool = False,
    unless: Command | None = None,
    mounts: bool = True,
) -> Command:
    """Any other program, run in ``namespace`` through ``ip netns exec``.

    ``mounts=False`` says the program needs none of what ``ip netns exec`` mounts
    (the namespace's ``/sys``, the files of ``/etc/netns/NS``): a kernel setting or a
    firewall rule.  It may then start from a thread inside the namespace, and join
    that namespace's ``ip -batch`` as a ``netns exec NS ...`` line.
    """
    args = tuple(argv)
    if not namespace:
        return Command(args, read=read, unless=unless)
    exec_args = ("netns", "exec", namespace, *args)
    quick = not mounts
    return Command(
        ("ip", *exec_args),
        namespace=namespace,
        read=read,
        unless=unless,
        inside=args if quick else None,
        family="ip" if quick else None,
        line=exec_args if quick else None,
    )
