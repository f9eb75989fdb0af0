"""The error tree.

Every error the library raises derives from :class:`NetnsKitError`, so a caller can
catch one type.  :class:`CommandError` keeps everything a user needs to see why the
kernel said no (argv, exit code, stdout, stderr); its subclasses exist so that code
can react to the common causes without matching on the kernel's words itself.
"""

from __future__ import annotations

import re
import shlex
from collections.abc import Sequence

#: Which Debian package brings each tool we start, for ToolMissingError's hint.
DEBIAN_PACKAGES: dict[str, str] = {
    "ip": "iproute2",
    "iptables": "iptables",
    "iptables-save": "iptables",
    "sysctl": "procps",
    "ping": "iputils-ping",
    "nsenter": "util-linux",
    "sudo": "sudo",
}


class NetnsKitError(Exception):
    """Base class of every error raised by netns_kit."""


class ValidationError(NetnsKitError, ValueError):
    """Bad input, found before any command ran; nothing on the machine changed."""

    def __init__(self, field: str, value: object, reason: str) -> None:
        self.field = field
        self.value = value
        self.reason = reason
        super().__init__(f"{field}: {value!r} {reason}")


class TeardownError(NetnsKitError):
    """Some undo steps failed while a lab was torn down; ``errors`` holds them all."""

    def __init__(self, lab: str, errors: Sequence[BaseException]) -> None:
        self.errors = list(errors)
        lines = "\n".join(f"  - {e}".replace("\n", "\n    ") for e in self.errors)
        super().__init__(f"tearing down lab {lab!r} left {len(self.errors)} problem(s):\n{lines}")


class LabBusyError(NetnsKitError):
    """A lab of that name is already open, in this process or another live one."""


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
    ) -> None:
        self.argv = tuple(argv)
        self.returncode = returncode
        self.stdout = stdout
        self.stderr = stderr
        super().__init__(self._message())

    @property
    def command_line(self) -> str:
        return shlex.join(self.argv)

    def _message(self) -> str:
        said = (self.stderr.strip() or self.stdout.strip() or "(no output)").replace("\n", "\n  ")
        text = f"`{self.command_line}` failed with exit code {self.returncode}:\n  {said}"
        if self.hint:
            text += f"\nhint: {self.hint}"
        return text

    def __reduce__(self) -> tuple[object, ...]:
        return (type(self), (self.argv, self.returncode, self.stdout, self.stderr))


class AlreadyExistsError(CommandError):
    """The kernel already holds an object of that name ("File exists")."""

    hint = "something of that name already exists; delete it or choose another name"


class NotFoundError(CommandError):
    """The object the command names is not there."""

    hint = "the device, namespace or rule is not there; check the name and namespace"


class PermissionDeniedError(CommandError):
    """The kernel refused: we are not privileged enough."""

    hint = "run as root, or with CAP_NET_ADMIN and CAP_SYS_ADMIN, or use ShellExecutor(sudo=True)"


class CommandTimeoutError(CommandError):
    """The command did not finish in the time it was given."""

    hint = "the command was killed after its timeout"


_EXEC_FAILED = re.compile(r'exec of "([^"]+)" failed: No such file or directory')

# Order matters: the first match wins.
_PATTERNS: tuple[tuple[str, type[CommandError]], ...] = (
    ("File exists", AlreadyExistsError),
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
    argv: Sequence[str], returncode: int, stdout: str = "", stderr: str = ""
) -> NetnsKitError:
    """Turn a failed command into the most specific error the kernel's words allow."""
    missing = _EXEC_FAILED.search(stderr)
    if missing:
        return ToolMissingError(missing.group(1))
    for needle, cls in _PATTERNS:
        if needle in stderr:
            return cls(argv, returncode, stdout, stderr)
    return CommandError(argv, returncode, stdout, stderr)
