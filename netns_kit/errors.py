"""The error tree.

Every error the library raises derives from :class:`NetnsKitError`, so a caller can
catch one type.  :class:`CommandError` keeps everything a user needs to see why the
kernel said no (argv, exit code, stdout, stderr); its subclasses exist so that code
can react to the common causes without matching on the kernel's words itself.
"""

from __future__ import annotations

import itertools
import math
import re
import shlex
from collections.abc import Collection, Sequence
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from netns_kit.result import Result

#: Which Debian package brings each tool we start, for ToolMissingError's hint.
DEBIAN_PACKAGES: dict[str, str] = {
    "ip": "iproute2",
    "/usr/lib/frr/zebra": "frr",
    "vtysh": "frr",
    "/usr/sbin/bird": "bird2",
    "bird": "bird2",
    "birdc": "bird2",
    "bridge": "iproute2",
    "ip6tables": "iptables",
    "iptables": "iptables",
    "iptables-save": "iptables",
    "sysctl": "procps",
    "ping": "iputils-ping",
    "fping": "fping",
    "nsenter": "util-linux",
    "unshare": "util-linux",
    "sudo": "sudo",
    "tee": "coreutils",
    "mkdir": "coreutils",
    "ls": "coreutils",
    "ssh": "openssh-client",
    "ssh-keygen": "openssh-client",
    "sshd": "openssh-server",
    "/usr/sbin/sshd": "openssh-server",
    "tc": "iproute2",
    "iperf3": "iperf3",
}


#: The most characters one user value takes in a message.  Names and addresses fit
#: whole; a hostile value (a megabyte of text, a 5,000-digit number, a list nested a
#: thousand deep) must not turn one error line into a flood, or into a second error.
REPR_LIMIT = 80
#: How many levels, and how many items per level, of a container a message shows.
_REPR_DEPTH = 3
_REPR_ITEMS = 8
#: Integers longer than this many bits are described, not written out: ``str()`` of
#: one over 4,300 digits raises ValueError, and nobody reads 80 digits anyway.
_INT_BITS = 256
#: Above this many bits the digit count is estimated (counting exactly costs a power
#: of ten as big as the number).
_INT_EXACT_BITS = 1 << 20


def bounded_repr(value: object, limit: int = REPR_LIMIT) -> str:
    """``repr(value)`` for an error message: at most ``limit`` characters, never raising.

    Every message that shows a user's value goes through here, because the value may
    come from a hostile file: a huge integer becomes "an integer of N digits", a
    long string is cut with "…", a deep or long container shows its first levels and
    items only, and anything whose own ``repr`` raises is named by its type.  Small,
    ordinary values come out exactly as ``repr`` writes them.
    """
    try:
        return _clip(_repr(value, _REPR_DEPTH, limit), limit)
    except Exception:  # a repr that raises (RecursionError included): name the type
        return _type_name(value)


def _type_name(value: object) -> str:
    try:
        return _clip(type(value).__name__, REPR_LIMIT)
    except Exception:
        return "object"


def _clip(text: str, limit: int) -> str:
    return text if len(text) <= limit else text[: max(limit - 1, 0)] + "…"


def _repr(value: object, depth: int, limit: int) -> str:
    kind = type(value)
    if isinstance(value, str) and kind is str:
        return _repr_str(value, limit)
    if isinstance(value, int) and kind is int:
        return _repr_int(value)
    if kind in (bool, float, complex, type(None)):
        return repr(value)
    if isinstance(value, bytes) and kind is bytes:
        return _clip(repr(value[:limit]), limit)
    if kind in _BRACKETS and isinstance(value, Collection):
        return _repr_container(value, depth, limit)
    try:
        return _clip(repr(value), limit)
    except Exception:
        return _type_name(value)


def _repr_str(value: str, limit: int) -> str:
    text = repr(value[:limit])
    if len(value) <= limit and len(text) <= limit:
        return text
    return text[: max(limit - 2, 1)] + "…" + text[-1]


def _repr_int(value: int) -> str:
    bits = value.bit_length()
    if bits <= _INT_BITS:
        return repr(value)
    digits = math.floor((bits - 1) * math.log10(2)) + 1  # 2**(bits-1) <= |value|
    if bits > _INT_EXACT_BITS:
        return f"an integer of about {digits:,} digits"
    if abs(value) >= 10**digits:
        digits += 1
    return f"an integer of {digits:,} digits"


_BRACKETS: dict[type, tuple[str, str]] = {
    list: ("[", "]"),
    tuple: ("(", ")"),
    set: ("{", "}"),
    frozenset: ("frozenset({", "})"),
    dict: ("{", "}"),
}


def _repr_container(value: Collection[object], depth: int, limit: int) -> str:
    """Like the builtin repr, but only ``depth`` levels and the first items of each."""
    opening, closing = _BRACKETS[type(value)]
    if not value:
        return "set()" if type(value) is set else opening + closing
    if depth <= 0:
        return opening + "…" + closing
    if isinstance(value, dict):
        shown = [
            f"{_repr(key, depth - 1, limit)}: {_repr(item, depth - 1, limit)}"
            for key, item in itertools.islice(value.items(), _REPR_ITEMS)
        ]
    else:
        shown = [_repr(item, depth - 1, limit) for item in itertools.islice(value, _REPR_ITEMS)]
    if len(value) > len(shown):
        shown.append("…")
    elif type(value) is tuple and len(value) == 1:
        shown[0] += ","
    return _clip(opening + ", ".join(shown) + closing, limit)


class NetnsKitError(Exception):
    """Base class of every error raised by netns_kit."""


class ValidationError(NetnsKitError, ValueError):
    """Bad input, found before any command ran; nothing on the machine changed."""

    def __init__(self, field: str, value: object, reason: str) -> None:
        self.field = field
        self.value = value
        self.reason = reason
        super().__init__(f"{field}: {bounded_repr(value)} {reason}")


class TeardownError(NetnsKitError):
    """Some undo steps failed while a lab was torn down; ``errors`` holds them all."""

    def __init__(self, lab: str, errors: Sequence[BaseException]) -> None:
        self.errors = list(errors)
        lines = "\n".join(f"  - {e}".replace("\n", "\n    ") for e in self.errors)
        super().__init__(f"tearing down lab {lab!r} left {len(self.errors)} problem(s):\n{lines}")


class LabBusyError(NetnsKitError):
    """A lab of that name is already open, in this process or another live one."""


class RootlessUnavailableError(NetnsKitError):
    """The kernel refuses the user namespace a rootless lab needs.

    ``setting`` names the kernel setting that refuses, with its ``value``, and
    ``allow`` the value that would allow it; all ``None`` when none of the settings
    known to refuse does (the message then says what ``unshare`` said, as a note).
    """

    def __init__(
        self,
        setting: str | None = None,
        value: str | None = None,
        meaning: str = "",
        allow: str | None = None,
    ) -> None:
        self.setting = setting
        self.value = value
        self.allow = allow
        if setting is None:
            text = (
                "the kernel refused to make the user namespace a rootless lab needs "
                "(run the lab as root instead)"
            )
        else:
            text = (
                f"a rootless lab needs a user namespace, but {setting} is {value}: "
                f"{meaning} (as root: sysctl -w {setting}={allow}; or run the lab as root)"
            )
        super().__init__(text)


class SandboxGoneError(NetnsKitError):
    """A rootless lab's sandbox is not running any more: what it held went with it."""

    def __init__(self, pid: int) -> None:
        self.pid = pid
        super().__init__(
            f"the lab's rootless sandbox (holder process {pid}) is gone, and everything "
            "it held went with it"
        )


class ToolMissingError(NetnsKitError):
    """A program we need is not installed; the message names the Debian package."""

    def __init__(self, tool: str) -> None:
        self.tool = tool
        package = DEBIAN_PACKAGES.get(tool)
        hint = f" (install the Debian package {package!r})" if package else ""
        super().__init__(f"{tool!r} is not installed{hint}")


class CommandError(NetnsKitError):
    """A command exited non-zero.  The message shows the command line and the
    kernel's own words, which is what a user needs to fix it."""

    hint: str = ""

    def __init__(
        self,
        argv: Sequence[str],
        returncode: int,
        stdout: str = "",
        stderr: str = "",
        *,
        machine: str | None = None,
    ) -> None:
        self.argv = tuple(argv)
        self.returncode = returncode
        self.stdout = stdout
        self.stderr = stderr
        #: The machine the command ran on, when not this one (an SSHExecutor's destination).
        self.machine = machine
        super().__init__(self._message())

    @property
    def command_line(self) -> str:
        return shlex.join(self.argv)

    def _message(self) -> str:
        said = (self.stderr.strip() or self.stdout.strip() or "(no output)").replace("\n", "\n  ")
        where = "" if self.machine is None else f" on machine {bounded_repr(self.machine)}"
        text = f"`{self.command_line}` failed{where} with exit code {self.returncode}:\n  {said}"
        if self.hint:
            text += f"\nhint: {self.hint}"
        return text

    def __reduce__(self) -> tuple[object, ...]:
        # pickle calls the class with positional arguments only: the machine (and any
        # notes) travel in the state, and the message is made again from all of it
        args = (self.argv, self.returncode, self.stdout, self.stderr)
        return (type(self), args, dict(self.__dict__))

    def __setstate__(self, state: dict[str, Any] | None) -> None:
        self.__dict__.update(state or {})
        self.args = (self._message(),)


class AlreadyExistsError(CommandError):
    """The kernel already holds an object of that name ("File exists")."""

    hint = "something of that name already exists; delete it or choose another name"


class NotFoundError(CommandError):
    """The object the command names is not there."""

    hint = "the device, namespace or rule is not there; check the name and namespace"


class PermissionDeniedError(CommandError):
    """The kernel refused: we are not privileged enough."""

    hint = (
        "run as root, or with CAP_NET_ADMIN and CAP_SYS_ADMIN, or use "
        "ShellExecutor(sudo=True); or build the lab without root: Lab(..., rootless=True)"
    )


class MachineUnreachableError(NetnsKitError):
    """Another machine could not be reached, or its connection died (an
    :class:`~netns_kit.SSHExecutor` could not run a command there).

    ``machine`` is the machine as the executor names it, ``said`` what ssh said.  The
    command that raised it did not run there, or was cut off: a connection that dies
    in the middle of a command leaves no way to tell how far it got.
    """

    def __init__(self, machine: str, said: str) -> None:
        self.machine = machine
        self.said = said.strip()
        text = self.said.replace("\n", "\n  ") or "(ssh said nothing)"
        super().__init__(
            f"machine {bounded_repr(machine)} is unreachable over ssh:\n  {text}\n"
            "hint: check that the machine is up, that sshd listens on it, and the ssh "
            "target, port, user and key"
        )

    def __reduce__(self) -> tuple[object, ...]:
        return (type(self), (self.machine, self.said))


class CommandTimeoutError(CommandError):
    """The command did not finish in the time it was given."""

    hint = "the command was killed after its timeout"


class KernelFeatureMissingError(CommandError):
    """The kernel lacks what a command needs: a qdisc kind (``tc`` says "Specified
    qdisc kind is unknown"), which is a kernel module that is not there.

    ``module`` names it (``sch_netem``): the command said what it needs when it was
    built (``Command.needs``); the message says how to get it.
    """

    def __init__(
        self,
        argv: Sequence[str],
        returncode: int = 2,
        stdout: str = "",
        stderr: str = "",
        *,
        machine: str | None = None,
        module: str | None = None,
    ) -> None:
        self.module = module
        self.kind = module.removeprefix("sch_") if module else None
        super().__init__(argv, returncode, stdout, stderr, machine=machine)

    def _message(self) -> str:
        said = (self.stderr.strip() or "(no output)").replace("\n", "\n  ")
        where = "" if self.machine is None else f" on machine {bounded_repr(self.machine)}"
        if self.module is None:
            lead = "this kernel lacks the qdisc kind this command asks for"
        else:
            config = f"CONFIG_NET_SCH_{(self.kind or '').upper()}"
            lead = (
                f"this kernel has no {self.kind} qdisc (kernel module {self.module}): "
                f"load it with `modprobe {self.module}`, or use a kernel built with "
                f"{config}"
            )
        return (
            f"{lead}\n`{self.command_line}` failed{where} with exit code "
            f"{self.returncode}:\n  {said}"
        )

    def __reduce__(self) -> tuple[object, ...]:
        state = dict(self.__dict__)
        return (type(self), (self.argv, self.returncode, self.stdout, self.stderr), state)


#: How ``ip netns exec`` and ``nsenter`` say that the program is not there.
_EXEC_FAILED = re.compile(
    r'exec of "([^"]+)" failed: No such file or directory'
    r"|failed to execute (\S+): No such file or directory"
)

# Order matters: the first match wins.
_PATTERNS: tuple[tuple[str, type[CommandError]], ...] = (
    ("Specified qdisc kind is unknown", KernelFeatureMissingError),
    ("File exists", AlreadyExistsError),
    # VXLAN: a device with this VNI and port already uses this underlay (EEXIST)
    ("with the specified VNI already exists", AlreadyExistsError),
    ("Cannot find device", NotFoundError),
    ("does not exist", NotFoundError),
    ("No such file", NotFoundError),
    ("No such device", NotFoundError),
    ("No such process", NotFoundError),
    ("Bad rule (does a matching rule exist in that chain?)", NotFoundError),
    ("Operation not permitted", PermissionDeniedError),
    ("Permission denied", PermissionDeniedError),
)


def command_error(
    argv: Sequence[str],
    returncode: int,
    stdout: str = "",
    stderr: str = "",
    *,
    machine: str | None = None,
    module: str | None = None,
) -> NetnsKitError:
    """Turn a failed command into the most specific error the kernel's words allow.

    ``machine`` names the machine it ran on when that is not this one: the error says
    so, since "File exists" on one of three machines is only half an answer.
    ``module`` is the kernel module the command said it needs (``Command.needs``),
    named when the kernel turns out to lack it.
    """
    missing = _EXEC_FAILED.search(stderr)
    if missing:
        error = ToolMissingError(missing.group(1) or missing.group(2))
        if machine is not None:
            error.add_note(f"on machine {bounded_repr(machine)}")
        return error
    for needle, cls in _PATTERNS:
        if needle in stderr:
            if cls is KernelFeatureMissingError:
                return KernelFeatureMissingError(
                    argv, returncode, stdout, stderr, machine=machine, module=module
                )
            return cls(argv, returncode, stdout, stderr, machine=machine)
    return CommandError(argv, returncode, stdout, stderr, machine=machine)


def result_error(result: Result, *, module: str | None = None) -> NetnsKitError:
    """The error a failed :class:`~netns_kit.result.Result` stands for (see
    :func:`command_error`), naming the machine it ran on."""
    return command_error(
        result.argv,
        result.returncode,
        result.stdout,
        result.stderr,
        machine=result.machine,
        module=module,
    )


class UsageError(NetnsKitError):
    """The command line asks for something impossible (exit code 2)."""
