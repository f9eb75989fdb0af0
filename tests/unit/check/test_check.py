"""Running a check with fake executors: the raw prober's plan, the fping fallback, the
second try, the neighbour limits (raised, recorded, put back, or paced), a kept lab's
check record, and ``netns-kit check`` / ``up --check``.

The lab is the fixtures' sample (see test_lab_views.build): red (192.168.15.1,
fd00:15::1) and blue (192.168.15.2) on bridge v-net-0, so two pairs: red to blue's
address, and blue to red's IPv4 one (blue has no IPv6 address to probe from).
"""

from __future__ import annotations

import io
import json
import os
from collections.abc import Callable, Sequence
from pathlib import Path

import pytest

from netns_kit import Lab, RecordingExecutor, ScriptExecutor, ValidationError, cli, recover
from netns_kit.check.neighbours import KEYS
from netns_kit.command import Command
from netns_kit.engine.step import Entry
from netns_kit.errors import NetnsKitError
from netns_kit.executors.probes import ProbeAnswer, ProbeJob
from netns_kit.lab.kept import KeptLab
from netns_kit.record.registry import Record, Registry, check_lease
from netns_kit.result import Result

from ..lab.test_lab_views import answer, build

Rule = Callable[[str, str, int], float | None]
LIMITS = " ".join(KEYS)
SMALL = "128\n2\n8\n128\n2\n8\n"  # gc_thresh1..3 of IPv4, then of IPv6: room for 1
ROOMY = "128\n512\n1024\n128\n512\n1024\n"  # the defaults: room for 256


def everyone(source: str, address: str, call: int) -> float | None:
    return 0.05


class Prober(RecordingExecutor):
    """A fake that can probe: answers by ``rule(source, address, call number)`` and keeps
    what each call was given, and what the check's record held at that moment."""

    can_probe = True
    parallel = 2

    def __init__(self, rule: Rule = everyone, *, look: Callable[[], object] | None = None) -> None:
        super().__init__()
        self.rule = rule
        self.look = look
        self.probed: list[list[list[ProbeJob]]] = []
        self.seen: list[object] = []

    def probe(
        self, lanes: Sequence[Sequence[ProbeJob]], *, timeout: float, count: int
    ) -> list[list[ProbeAnswer]]:
        self.probed.append([list(lane) for lane in lanes])
        self.commands.append(("<probe>",))
        if self.look is not None:
            self.seen.append(self.look())
        call = len(self.probed)
        return [
            [
                ProbeAnswer(
                    job.namespace,
                    [self.rule(job.namespace, a, call) for a in job.addresses],
                    [None] * job.probes,
                )
                for job in lane
            ]
            for lane in lanes
        ]


def lines(ex: RecordingExecutor) -> list[str]:
    return [" ".join(argv) for argv in ex.commands]


def test_a_green_lab(state: Path) -> None:
    ex = Prober()
    lab = build(ex, state)
    ex.answer(["sysctl", "-n", *KEYS], stdout=ROOMY)
    start = len(ex.commands)
    result = lab.reachability()
    assert result.ok and len(result) == 2 and result.method == "raw" and result.lab == "views"
    assert not result.paced and result.notes == ()
    assert result.sources == ("red", "blue")
    assert {t.address for t in result.targets} == {"192.168.15.1", "192.168.15.2"}
    (call,) = ex.probed
    jobs = [job for lane in call for job in lane]
    assert sorted(job.namespace for job in jobs) == ["blue", "red"]  # each in one lane
    assert len(call) == 2
    by_name = {job.namespace: job for job in jobs}
    assert by_name["blue"].addresses == ("192.168.15.1",)
    assert [i.peer_address for i in by_name["red"].introductions] == ["192.168.15.2"]
    done = lines(ex)[start:]
    assert done[:3] == [f"ip -n {ns} -d -j -force -batch -" for ns in ("views-host", "red", "blue")]
    assert not any("sysctl -q -w" in line or "neigh flush" in line for line in done)
    lab.close()


def test_a_raise_is_recorded_while_the_check_runs_and_put_back(state: Path) -> None:
    registry = Registry(state)
    ex = Prober(look=lambda: registry.read("views"))
    lab = build(ex, state)
    ex.answer(["sysctl", "-n", *KEYS], stdout=SMALL)
    result = lab.reachability()
    assert result.ok
    (record,) = ex.seen
    assert isinstance(record, Record)
    raised = [e for e in record.resources if e.kind == "sysctl"]
    assert [(e.name, e.namespace, e.value, e.previous) for e in raised] == [
        ("net.ipv4.neigh.default.gc_thresh2", None, "4", "2"),
        ("net.ipv4.neigh.default.gc_thresh3", None, "10", "8"),
    ]  # no IPv6 pair, no IPv6 raise
    assert raised[0].undo == ("sysctl", "-q", "-w", "net.ipv4.neigh.default.gc_thresh2=2")
    after = registry.read("views")
    assert after is not None and not [e for e in after.resources if e.kind == "sysctl"]
    done = lines(ex)
    probe = done.index("<probe>")
    writes = [i for i, line in enumerate(done) if line.startswith("sysctl -q -w")]
    flushes = [i for i, line in enumerate(done) if line.endswith("neigh flush all")]
    assert len(writes) == 4 and max(writes[:2]) < probe < min(writes[2:])
    assert done[writes[2]].endswith("gc_thresh3=8")  # put back in reverse
    assert flushes and probe < min(flushes) and max(flushes) < min(writes[2:])
    assert {done[i] for i in flushes} == {
        f"ip -n {ns} neigh flush all" for ns in ("views-host", "red", "blue")
    }
    assert any("raised net.ipv4.neigh.default.gc_thresh2 2 -> 4" in n for n in result.notes)
    assert lab.teardown_commands()[-1:] != []  # the lab is still whole
    lab.close()


def test_the_lab_record_keeps_a_raise_for_recovery_when_the_check_dies(state: Path) -> None:
    def crash(source: str, address: str, call: int) -> float | None:
        raise KeyboardInterrupt

    ex = Prober(crash)
    lab = build(ex, state)
    ex.answer(["sysctl", "-n", *KEYS], stdout=SMALL)
    with pytest.raises(KeyboardInterrupt):
        lab.reachability()
    record = Registry(state).read("views")
    assert record is not None
    assert [e.name for e in record.resources if e.kind == "sysctl"] == []  # put back on the way out
    lab.close()


def test_failed_pairs_are_asked_again(state: Path) -> None:
    def late(source: str, address: str, call: int) -> float | None:
        return None if (source, address, call) == ("blue", "192.168.15.1", 1) else 0.1

    ex = Prober(late)
    lab = build(ex, state)
    result = lab.reachability()
    assert result.ok and result.retried == 1
    second = [job for lane in ex.probed[1] for job in lane if job.addresses]
    assert [(job.namespace, job.addresses) for job in second] == [("blue", ("192.168.15.1",))]
    assert "ip -n blue neigh flush all" in lines(ex)  # emptied before the second try
    lab.close()


def test_a_pair_that_fails_twice_fails(state: Path) -> None:
    ex = Prober(lambda s, a, c: None if a == "192.168.15.1" else 0.1)
    lab = build(ex, state)
    result = lab.reachability()
    assert not result.ok and result.retried == 0
    assert [str(f) for f in result.failures()] == ["blue -> 192.168.15.1 (red/veth-red): no reply"]
    lab.close()


def test_fping_when_the_executor_cannot_probe(state: Path) -> None:
    ex = RecordingExecutor()
    lab = build(ex, state)
    fping = ["fping", "-q", "-C", "1", "-i", "0", "-p", "10", "-r", "0", "-t", "1000"]
    ex.answer(["ip", "netns", "exec", "red", *fping], stderr="192.168.15.2 : 0.08\n", returncode=0)
    ex.answer(["ip", "netns", "exec", "blue", *fping], stderr="192.168.15.1 : -\n", returncode=1)
    result = lab.reachability()
    assert result.method == "fping" and result.paced  # limits unreadable: paced
    assert result[("red", "192.168.15.2")] == 0.08
    assert result[("blue", "192.168.15.1")] is None
    assert "note: the neighbour limits could not be read" in result.to_text()
    # blue's failure was asked a second time, alone
    blue = " ".join(["ip", "netns", "exec", "blue", *fping, "192.168.15.1"])
    assert lines(ex).count(blue) == 2
    assert lines(ex).count(" ".join(["ip", "netns", "exec", "red", *fping, "192.168.15.2"])) == 1
    lab.close()


def test_paced_when_the_limits_cannot_be_raised(state: Path) -> None:
    ex = Prober()
    lab = build(ex, state)
    ex.answer(["sysctl", "-n", *KEYS], stdout=SMALL)
    ex.answer(["sysctl", "-q", "-w"], returncode=255, stderr="sysctl: permission denied\n")
    result = lab.reachability()
    assert result.ok and result.paced
    assert result.notes[0].startswith("the neighbour limits could not be raised")
    record = Registry(state).read("views")
    assert record is not None and not [e for e in record.resources if e.kind == "sysctl"]
    lab.close()


def test_arguments_are_checked_before_anything_runs(state: Path) -> None:
    ex = Prober()
    lab = build(ex, state)
    start = len(ex.commands)
    with pytest.raises(ValidationError, match="sources"):
        lab.reachability(sources=["red", "green"])
    with pytest.raises(ValidationError, match="timeout"):
        lab.reachability(timeout=0)
    with pytest.raises(ValidationError, match="count"):
        lab.reachability(count=0)
    with pytest.raises(ValidationError, match="targets"):
        lab.reachability(targets=["not an address"])
    assert ex.commands[start:] == []
    with pytest.raises(ValidationError, match="targets"):
        lab.reachability(targets=["10.9.9.9"])  # an address, but not the lab's
    assert not any(line.startswith(("sysctl", "<probe>")) for line in lines(ex)[start:])
    narrowed = lab.reachability(sources="blue", targets=["192.168.15.1"])
    assert list(narrowed) == [("blue", "192.168.15.1")]
    with lab.batch(), pytest.raises(NetnsKitError, match="once built"):
        lab.reachability()
    lab.close()
    with pytest.raises(NetnsKitError, match="closed"):
        lab.reachability()


def test_a_dry_run_has_nothing_to_probe_and_writes_nothing(state: Path) -> None:
    dry = ScriptExecutor()
    with Lab("dry", executor=dry, isolated=True, state_dir=state) as lab:
        red, blue = lab.namespace("red"), lab.namespace("blue")
        lab.link(red, blue, addresses=("10.0.0.1/24", "10.0.0.2/24"))
        written = list(dry.lines)
        result = lab.reachability()
        assert result.ok and len(result) == 0
        assert "nothing to probe" in result.to_text()
        assert dry.lines == written


# -- a kept lab ---------------------------------------------------------------------------
NAMES = {"host": "kl-host", "red": "kl-red", "blue": "kl-blue"}


def kept(state: Path) -> KeptLab:
    registry = Registry(state)
    entries = [Entry("namespace", name) for name in NAMES.values()]
    registry.write(Record("kl", 999_999, True, "kl-host", "kept", entries))
    record = registry.read("kl")
    assert record is not None
    return KeptLab(record, registry)


def kept_executor(state: Path, rule: Rule = everyone) -> Prober:
    registry = Registry(state)
    ex = Prober(rule, look=lambda: registry.read(check_lease("kl")))
    answer(ex, NAMES)
    ex.answer(
        ["ip", "-j", "netns", "list"], stdout=json.dumps([{"name": n} for n in NAMES.values()])
    )
    ex.answer(["sysctl", "-n", *KEYS], stdout=SMALL)
    return ex


def test_a_kept_lab_keeps_its_raise_in_a_record_of_its_own(state: Path) -> None:
    ex = kept_executor(state)
    result = kept(state).check(ex)
    assert result.ok and result.sources == ("kl-red", "kl-blue")
    (lease,) = ex.seen
    assert isinstance(lease, Record)
    assert lease.name == "kl:check" and lease.state == "checking" and lease.pid == os.getpid()
    assert [e.name for e in lease.resources] == [
        "net.ipv4.neigh.default.gc_thresh2",
        "net.ipv4.neigh.default.gc_thresh3",
    ]
    assert Registry(state).read("kl:check") is None  # gone once put back
    assert not (state / "kl:check.lock").exists()


def test_a_check_that_died_is_undone_by_recover(state: Path) -> None:
    kept(state)
    key = "net.ipv4.neigh.default.gc_thresh3"
    undo = ("sysctl", "-q", "-w", f"{key}=1024")
    Registry(state).write(
        Record(
            "kl:check",
            999_999,
            state="checking",
            resources=[Entry("sysctl", key, None, undo=undo, value="9000", previous="1024")],
        )
    )
    ex = RecordingExecutor()
    ex.answer(["sysctl", "-n", key], stdout="9000\n")  # still what the check set
    recover("kl", executor=ex, state_dir=state)
    assert ex.commands[-1] == undo
    assert Registry(state).read("kl:check") is None


def test_a_kept_lab_with_missing_namespaces_is_not_checked(state: Path) -> None:
    ex = kept_executor(state)
    ex.answer(["ip", "-j", "netns", "list"], stdout=json.dumps([{"name": "kl-host"}]))
    with pytest.raises(NetnsKitError, match="missing namespaces: kl-red, kl-blue"):
        kept(state).check(ex)


# -- the command line ---------------------------------------------------------------------
def check(state: Path, ex: RecordingExecutor, *argv: str) -> tuple[int, str, str]:
    out, err = io.StringIO(), io.StringIO()
    code = cli.main(["--state-dir", str(state), *argv], executor=ex, stdout=out, stderr=err)
    return code, out.getvalue(), err.getvalue()


def test_cli_check_green(state: Path) -> None:
    kept(state)
    code, out, err = check(state, kept_executor(state), "check", "kl")
    assert code == 0, err
    assert out.splitlines()[0] == "lab kl: reachability"
    assert out.splitlines()[1].split() == ["FROM", "\\", "TO", "kl-red", "kl-blue"]
    assert "OK: 2/2 pairs answered" in out


def test_cli_check_fails_with_exit_1_and_names_the_pairs(state: Path) -> None:
    kept(state)
    ex = kept_executor(state, lambda s, a, c: None if a == "192.168.15.1" else 0.1)
    code, out, _ = check(state, ex, "check", "kl")
    assert code == 1
    assert "kl-blue -> 192.168.15.1 (kl-red/veth-red): no reply" in out


def test_cli_check_json_and_expect(state: Path, tmp_path: Path) -> None:
    kept(state)
    rule: Rule = lambda s, a, c: None if a == "192.168.15.1" else 0.1  # noqa: E731
    expect = tmp_path / "expect.toml"
    expect.write_text('[[fail]]\nfrom = "kl-blue"\nto = "192.168.15.1"\n')
    code, out, _ = check(
        state, kept_executor(state, rule), "check", "kl", "--json", "--expect", str(expect)
    )
    assert code == 0
    data = json.loads(out)
    assert data["as_expected"] is True and data["ok"] is False
    assert data["expect"]["expected"] == 1 and data["failures"][0]["source"] == "kl-blue"
    code, out, _ = check(state, kept_executor(state, rule), "check", "kl", "--expect", str(expect))
    assert code == 0 and out.rstrip().endswith("as expected")
    expect.write_text('[[fail]]\nfrom = "kl-red"\nto = "*"\n')
    code, out, _ = check(state, kept_executor(state, rule), "check", "kl", "--expect", str(expect))
    assert code == 1
    assert "UNEXPECTED: 1 pair(s) failed" in out
    assert "UNEXPECTED: 1 pair(s) answered but should not" in out
    assert out.rstrip().endswith("NOT as expected")


def test_cli_check_usage(state: Path, tmp_path: Path) -> None:
    kept(state)
    code, _, err = check(state, kept_executor(state), "check", "kl", "--timeout", "0")
    assert code == 2 and "timeout" in err
    code, _, err = check(state, RecordingExecutor(), "check", "nope")
    assert code == 1 and "no lab named 'nope'" in err
    bad = tmp_path / "bad.toml"
    bad.write_text("[[fail]]\n")
    code, _, err = check(state, kept_executor(state), "check", "kl", "--expect", str(bad))
    assert code == 2 and "fail[0].from" in err
    code, _, err = check(state, RecordingExecutor(), "up", "x.toml", "--expect", str(bad))
    assert code == 2


def test_cli_up_check(state: Path, tmp_path: Path) -> None:
    topology = tmp_path / "kl.toml"
    topology.write_text(
        'name = "kl"\nisolated = true\nnamespaces = ["kl-red", "kl-blue"]\n'
        '[[bridges]]\nname = "v-net-0"\naddress = "192.168.15.5/24"\n'
        '[[links]]\na = "kl-red"\nb = "v-net-0"\naddresses = ["192.168.15.1/24"]\n'
        '[[links]]\na = "kl-blue"\nb = "v-net-0"\naddresses = ["192.168.15.2/24"]\n'
    )

    class Building(Prober):
        """No namespace exists until the lab's batch adds them."""

        def execute(self, command: Command, timeout: float | None = None) -> Result:
            if command.argv == ("ip", "-j", "netns", "list") and not any(
                "netns add kl-red" in line for line in lines(self)
            ):
                self.runs.append(command)
                self.commands.append(command.argv)
                return Result(command.argv, 0, "[]")
            return super().execute(command, timeout)

    ex = Building(look=lambda: None)
    answer(ex, NAMES)
    ex.answer(
        ["ip", "-j", "netns", "list"], stdout=json.dumps([{"name": n} for n in NAMES.values()])
    )
    ex.answer(["sysctl", "-n", *KEYS], stdout=ROOMY)
    code, out, err = check(state, ex, "up", str(topology), "--check")
    assert code == 0, err
    assert "is up." in out and "OK: 2/2 pairs answered" in out
    assert out.index("is up.") < out.index("lab kl: reachability")


# -- the machine-wide lock ------------------------------------------------------------------
def test_one_check_at_a_time_holds_the_limits(tmp_path: Path) -> None:
    from netns_kit.check.neighbours import machine_lock

    path = tmp_path / "locks" / "neighbour-limits.lock"
    with machine_lock(path) as first:
        assert first and path.exists()
        with machine_lock(path, wait=0.1) as second:
            assert not second  # held: the second check paces instead
    assert not path.exists()  # nothing left behind
    with machine_lock(path) as again:
        assert again
    with machine_lock(tmp_path / "file" / "x.lock") as unmakeable:
        assert unmakeable  # its directory is made
    (tmp_path / "blocked").write_text("a file, not a directory")
    with machine_lock(tmp_path / "blocked" / "x.lock") as refused:
        assert not refused
