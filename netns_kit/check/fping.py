"""The process-based prober: one ``fping`` per source namespace.

For executors that cannot open sockets inside namespaces (``sudo``, a remote or
rootless one), a check runs ``fping`` in each source namespace, through
the executor like any command, and the runner overlaps them.  fping (the Debian
package ``fping``) sends to all its targets at once; ``-i 0`` matters: its default
10 ms between packets made 9,900 probes take 50 s instead of 0.9 s.  ``-r 0``: no
retries (the check asks failed pairs again itself), ``-C`` prints every target's
round-trip times on stderr, ``-`` for a lost one::

    10.0.0.2  : 0.051
    fd00::3   : -
"""

from __future__ import annotations

import re
from collections.abc import Sequence

from netns_kit.command import Command, in_namespace
from netns_kit.errors import command_error
from netns_kit.executors.probes import ProbeAnswer, ProbeJob
from netns_kit.result import Result

_LINE = re.compile(r"^(\S+)\s+:((?:\s+(?:[\d.]+|-))+)\s*$")
#: fping's exit codes: 0 all answered, 1 some did not, 2 a name did not resolve;
#: 3 and up are usage or system errors.
_FINE = (0, 1, 2)


def command(job: ProbeJob, *, timeout: float, count: int) -> Command:
    """``fping`` in the job's namespace, to every address of the job."""
    argv = [
        "fping",
        "-q",
        "-C",
        str(count),
        "-i",
        "0",
        "-p",
        "10",
        "-r",
        "0",
        "-t",
        str(max(1, round(timeout * 1000))),
        *job.addresses,
    ]
    return in_namespace(argv, job.namespace, read=True, mounts=False)


def parse(job: ProbeJob, result: Result) -> ProbeAnswer:
    """The best round-trip time per address from fping's ``-C`` lines (stderr).

    An address fping does not report gets no time; a failure of fping itself (a bad
    option, a missing namespace) raises its error.
    """
    if result.returncode not in _FINE or "Cannot open network namespace" in result.stderr:
        raise command_error(result.argv, result.returncode, result.stdout, result.stderr)
    best: dict[str, float | None] = {}
    for line in result.stderr.splitlines():
        match = _LINE.match(line.strip())
        if match is None:
            continue
        times = [float(x) for x in match.group(2).split() if x != "-"]
        best[match.group(1)] = min(times) if times else None
    rtts = [best.get(address) for address in job.addresses]
    return ProbeAnswer(job.namespace, rtts, [None] * len(job.addresses))


def commands(jobs: Sequence[ProbeJob], *, timeout: float, count: int) -> list[Command]:
    """One fping per job that has addresses to probe."""
    return [command(job, timeout=timeout, count=count) for job in jobs if job.addresses]
