"""Names: a hosts file per namespace, so that ``ping blue`` works inside a lab.

``ip netns exec NS`` bind-mounts ``/etc/netns/NS/hosts`` over ``/etc/hosts`` for the
program it starts (and so does every ``Namespace.run``/``popen``); the machine's own
``/etc/hosts`` is never touched.  Every namespace of a lab gets the same file: each
namespace's name maps to its first address, and ``<ns>-<ifname>`` to the address of
each of its interfaces.

The files are the lab's resources like any other: recorded before they are written,
removed at teardown and by :func:`~netns_kit.recover`.  They are written by programs
an executor runs (``mkdir``, then ``tee`` with the text on stdin), three processes
however many namespaces there are, so a dry run shows them too.  ``/etc/netns`` itself
is made only when it is missing, and removed again only when it is empty.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence

import attrs

from netns_kit import validate
from netns_kit.command import Command
from netns_kit.engine.step import Entry, Phase, Step
from netns_kit.errors import ValidationError

HOSTS_DIR = "/etc/netns"

#: Every hosts file starts with these: a program that looks up localhost must still
#: find it once the file covers /etc/hosts.
LOCAL = ("127.0.0.1\tlocalhost", "::1\tlocalhost ip6-localhost ip6-loopback")


@attrs.frozen
class Address:
    """An address a lab gave an interface: in ``namespace``, on ``interface``."""

    namespace: str
    interface: str
    address: str  # a CIDR


def entries(addresses: Iterable[Address]) -> list[tuple[str, tuple[str, ...]]]:
    """Lines of a hosts file: (address, names).  A namespace's name goes with its
    first address; each interface is ``<ns>-<ifname>``."""
    named: set[str] = set()
    lines: list[tuple[str, tuple[str, ...]]] = []
    for item in addresses:
        address = str(validate.interface(item.address).ip)
        names = [f"{item.namespace}-{item.interface}"]
        if item.namespace not in named:
            named.add(item.namespace)
            names.insert(0, item.namespace)
        lines.append((address, tuple(names)))
    return lines


def _braced(paths: Sequence[str], tail: str = "") -> str:
    """How a record names many files at once: ``/etc/netns/{red,blue}/hosts``."""
    names = [p.rsplit("/", 1)[-1] for p in paths]
    inner = names[0] if len(names) == 1 else "{" + ",".join(names) + "}"
    return f"{HOSTS_DIR}/{inner}{tail}"


@attrs.define
class HostsFiles:
    """``/etc/netns/<ns>/hosts`` for each of ``namespaces``, all with the same text."""

    lab: str
    namespaces: tuple[str, ...]
    lines: tuple[tuple[str, tuple[str, ...]], ...]

    def __attrs_post_init__(self) -> None:
        for name in self.namespaces:
            validate.namespace_name(name)

    def text(self) -> str:
        head = [
            f"# Written by netns-kit for lab {self.lab}; `ip netns exec` shows it as /etc/hosts.",
            "# It is removed when the lab closes.",
            *LOCAL,
        ]
        body = [f"{address}\t{' '.join(names)}" for address, names in self.lines]
        return "\n".join(head + body) + "\n"

    @staticmethod
    def list_command() -> Command:
        """What is in /etc/netns now (it fails when there is no /etc/netns)."""
        return Command(("ls", "-1", "-A", HOSTS_DIR), read=True)

    @staticmethod
    def present(returncode: int, stdout: str) -> set[str] | None:
        """The entries of /etc/netns from :meth:`list_command`; ``None`` if it is missing."""
        return set(stdout.split()) if returncode == 0 else None

    def steps(
        self, present: set[str] | None, made: set[str], *, shared: bool = False
    ) -> list[Step]:
        """Make what is missing, then write every file.

        ``present`` is what /etc/netns holds now (``None``: no /etc/netns); ``made``
        are the directories this lab made already (an earlier call).  A directory
        that is there but not the lab's is refused: it is somebody else's.
        ``shared``: /etc/netns is there because another lab made it; this lab then
        also removes it once it is empty, so that whichever lab goes last leaves the
        machine as it was.  One the machine had before any lab is never removed.
        """
        taken = [ns for ns in self.namespaces if present and ns in present and ns not in made]
        if taken:
            raise ValidationError(
                "namespace",
                taken[0],
                f"already has {HOSTS_DIR}/{taken[0]}, which this lab did not make: remove it "
                "first (ip netns exec would show its files in the lab)",
            )
        steps: list[Step] = []
        if present is None or shared:
            undo = Command(("rmdir", "--ignore-fail-on-non-empty", HOSTS_DIR))
            steps.append(self._step(("mkdir", "-p", HOSTS_DIR), undo, HOSTS_DIR))
        new = [f"{HOSTS_DIR}/{ns}" for ns in self.namespaces if ns not in made]
        if new:
            steps.append(self._step(("mkdir", "-p", *new), Command(("rmdir", *new)), _braced(new)))
        files = [f"{HOSTS_DIR}/{ns}/hosts" for ns in self.namespaces]
        if files:
            dirs = [f.rsplit("/", 1)[0] for f in files]
            write = Command(("tee", *files), stdin=self.text())
            steps.append(self._step(write, Command(("rm", "-f", *files)), _braced(dirs, "/hosts")))
        return steps

    @staticmethod
    def _step(command: tuple[str, ...] | Command, undo: Command, name: str) -> Step:
        """A change to the root's files; recorded so that recovery removes it too."""
        made = command if isinstance(command, Command) else Command(command)
        entry = Entry("file", name, None, undo=undo.argv)
        return Step(made, (undo,), entry, Phase.FILTER, frozenset({None}))
