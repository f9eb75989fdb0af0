"""``netns-kit capture`` and ``netns-kit shell`` (and the interactive ``exec``).

All three run one program attached to the caller's terminal through the executor's
``interact`` (:func:`netns_kit.executors.interact`): stdin passes through, output
streams as it comes, the program gets the terminal when there is one, Ctrl-C
reaches it, and its exit code is ours.  A rootless lab's program runs in its
sandbox (``nsenter``); on another machine an ssh executor asks for a terminal
(``ssh -t``).
"""

from __future__ import annotations

import argparse
import os
import sys
from collections.abc import Callable
from typing import Any

from netns_kit import validate
from netns_kit.capture.capture import check_file, check_filter, tcpdump_command
from netns_kit.capture.where import Tap
from netns_kit.command import Command, in_namespace
from netns_kit.daemons import cli as daemons_cli
from netns_kit.errors import UsageError, ValidationError
from netns_kit.executors import interact

#: Shells whose start-up files we skip, so that our prompt is the one shown.
_NO_RC = {"bash": ("--norc", "-i"), "zsh": ("-f", "-i")}


def shell_argv(shell: str, lab: str, namespace: str) -> tuple[str, ...]:
    """``env PS1=... SHELL -i``: the namespace's name in the prompt.

    bash and zsh read start-up files that usually set their own prompt, so they start
    without them (``--norc``, ``-f``); any other shell (``sh``, ``dash``) takes PS1
    from the environment.  ``NETNS_KIT_LAB`` and ``NETNS_KIT_NAMESPACE`` tell scripts
    where they are.
    """
    name = os.path.basename(shell)
    if name == "bash":
        prompt = f"({lab}:{namespace}) \\u@\\h:\\w\\$ "
    elif name == "zsh":
        prompt = f"({lab}:{namespace}) %n@%m:%~%# "
    else:
        prompt = f"({lab}:{namespace}) $ "
    flags = _NO_RC.get(name, ("-i",))
    return (
        "env",
        f"PS1={prompt}",
        f"NETNS_KIT_LAB={lab}",
        f"NETNS_KIT_NAMESPACE={namespace}",
        shell,
        *flags,
    )


def shell_command(shell: str, lab: str, namespace: str) -> Command:
    return in_namespace(shell_argv(shell, lab, namespace), namespace)


def kept_tap(namespaces: list[str], where: str) -> Tap:
    """``ns:iface`` or ``ns`` (every interface) in one of a kept lab's namespaces."""
    namespace, _, interface = where.partition(":")
    interface = interface or "any"
    if namespace not in namespaces:
        raise ValidationError(
            "where", where, f"is not in a namespace of the lab (it has: {', '.join(namespaces)})"
        )
    if interface != "any":
        validate.interface_name(interface, "where")
    return Tap(namespace, interface)


def capture_command(tap: Tap, file: str | None, filter: str | None) -> Command:
    """``-w FILE`` writes a pcap, ``-w -`` pcap to stdout, and no ``-w`` prints lines
    (``tcpdump -l``)."""
    if file is not None and file != "-":
        file = str(check_file(file))
    return tcpdump_command(tap, file=file, filter=check_filter(filter))


def split_write(write: str | None, words: list[str]) -> tuple[str | None, list[str]]:
    """``-w FILE`` may also come after WHERE, among the filter's words (argparse hands
    everything after WHERE to the filter); ``--`` ends the options."""
    rest: list[str] = []
    k = 0
    while k < len(words):
        word = words[k]
        if word == "--":
            rest += words[k + 1 :]
            break
        if word in ("-w", "--write"):
            if k + 1 >= len(words):
                raise UsageError(f"{word} needs a FILE (or - for stdout)")
            write = words[k + 1]
            k += 2
            continue
        if word.startswith("--write="):
            write = word.partition("=")[2]
        else:
            rest.append(word)
        k += 1
    return write, rest


def _terminal() -> bool:
    try:
        return os.isatty(sys.stdin.fileno())
    except (OSError, ValueError):
        return False


def _flush(ctx: Any) -> None:
    ctx.out.flush()
    ctx.err.flush()


def _namespace(ctx: Any, lab: Any) -> str:
    namespace: str = ctx.args.namespace
    known = lab.namespaces()
    if namespace not in known:
        raise UsageError(
            f"{namespace!r} is not a namespace of lab {lab.name!r} "
            f"(it has: {', '.join(known) or 'none'})"
        )
    return namespace


def cmd_exec(ctx: Any) -> int:
    """``netns-kit exec LAB NS -- CMD...``, attached to this terminal."""
    lab = ctx.lab(ctx.args.name)
    namespace = _namespace(ctx, lab)
    argv = list(ctx.args.command)
    if argv and argv[0] == "--":
        argv = argv[1:]
    if not argv:
        raise UsageError(f"no command given: netns-kit exec {lab.name} {namespace} -- CMD...")
    argv = daemons_cli.exec_argv(lab.record, namespace, argv)  # vtysh/birdc: its daemons
    _flush(ctx)
    return interact(ctx.reach(lab), in_namespace(argv, namespace), tty=_terminal())


def cmd_shell(ctx: Any) -> int:
    lab = ctx.lab(ctx.args.name)
    namespace = _namespace(ctx, lab)
    shell = os.environ.get("SHELL") or "/bin/sh"
    _flush(ctx)
    return interact(ctx.reach(lab), shell_command(shell, lab.name, namespace), tty=_terminal())


def cmd_capture(ctx: Any) -> int:
    lab = ctx.lab(ctx.args.name)
    tap = kept_tap(lab.namespaces(), ctx.args.where)
    write, words = split_write(ctx.args.write, list(ctx.args.filter))
    command = capture_command(tap, write, " ".join(words) if words else None)
    _flush(ctx)
    return interact(ctx.reach(lab), command, tty=_terminal())


def register(add: Callable[[str, Callable[[Any], int], str], argparse.ArgumentParser]) -> None:
    """Add ``exec``, ``shell`` and ``capture`` to the ``netns-kit`` parser."""
    run = add(
        "exec",
        cmd_exec,
        "run a command in one of a lab's namespaces, attached to this terminal (stdin, "
        "output as it comes, Ctrl-C); exits with the command's exit code",
    )
    run.add_argument("name", metavar="NAME")
    run.add_argument("namespace", metavar="NS")
    run.add_argument("command", nargs=argparse.REMAINDER, metavar="-- CMD...")

    shell = add(
        "shell", cmd_shell, "start $SHELL (or /bin/sh) in a namespace, its name in the prompt"
    )
    shell.add_argument("name", metavar="NAME")
    shell.add_argument("namespace", metavar="NS")

    capture = add(
        "capture",
        cmd_capture,
        "capture packets in a namespace (NS) or on one interface (NS:IFACE): tcpdump "
        "lines, or a pcap file with -w (-w - writes pcap to stdout: | wireshark -k -i -); "
        "Ctrl-C ends it",
    )
    capture.add_argument("name", metavar="NAME")
    capture.add_argument("where", metavar="WHERE", help="NS or NS:IFACE")
    capture.add_argument("-w", "--write", metavar="FILE", help="a .pcap file, or - for stdout")
    capture.add_argument(
        "filter", nargs=argparse.REMAINDER, metavar="FILTER", help="a tcpdump filter"
    )
