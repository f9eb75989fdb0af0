"""Many programs started at once, detached (executors/detached.py): the launcher's
exact text, what it prints read back, a detached program's life, and each executor's
way to it.  No process starts here."""

from __future__ import annotations

import signal

from netns_kit import MachineUnreachableError, RecordingExecutor, RoutingExecutor, ScriptExecutor
from netns_kit.command import Command
from netns_kit.executors import Process, start_detached
from netns_kit.executors.detached import (
    MARK,
    DetachedProcess,
    launch_argv,
    parse_started,
    processes,
    state_of,
)
from netns_kit.result import Result


def stat(pid: int, start: str, state: str = "S", name: str = "sh") -> str:
    return f"{pid} ({name}) {state} " + " ".join(["0"] * 18) + f" {start} 0 0"


RED = Command(("ip", "netns", "exec", "red", "sh", "-c", "echo 'it''s'; exec sleep 9"))
BLUE = Command(("ip", "netns", "exec", "blue", "bird", "-f"))


def test_the_launcher_quotes_every_word_and_announces_each_program_before_it_runs() -> None:
    argv = launch_argv([RED, BLUE], ["/run/d/red.log", "/run/d/it's.log"])
    assert argv == (
        "sh",
        "-c",
        "exec 3>&1 </dev/null\n"
        f'( read -r s </proc/self/stat || exit 1; echo "{MARK} 0 $s" >&3 || exit 1; '
        "exec ip netns exec red sh -c 'echo '\"'\"'it'\"'\"''\"'\"'s'\"'\"'; exec sleep 9' 3>&- )"
        " </dev/null >>/run/d/red.log 2>&1 &\n"
        f'( read -r s </proc/self/stat || exit 1; echo "{MARK} 1 $s" >&3 || exit 1; '
        "exec ip netns exec blue bird -f 3>&- ) </dev/null >>'/run/d/it'\"'\"'s.log' 2>&1 &\n",
    )


def test_what_the_launcher_printed_gives_each_pid_and_start_time() -> None:
    out = (
        f"{MARK} 1 {stat(20, '777', name='s h) (x')}\n"
        "noise\n"
        f"{MARK} 0 {stat(10, '555')}\n"
        f"{MARK} 9 {stat(99, '1')}\n"  # no such command: ignored
    )
    assert parse_started(out, 3) == [(10, "555"), (20, "777"), None]


def test_a_detached_program_is_alive_only_with_its_own_start_time() -> None:
    assert state_of(stat(10, "555"), "555")
    assert not state_of(stat(10, "556"), "555")  # the PID was reused
    assert not state_of(stat(10, "555", state="Z"), "555")  # ended, not yet reaped
    assert not state_of(None, "555")


def test_a_detached_program_is_signalled_only_while_it_is_that_process() -> None:
    sent: list[tuple[int, int]] = []
    now = {"stat": stat(10, "555")}
    process = DetachedProcess(
        ("bird",), 10, "555", stat=lambda pid: now["stat"], kill=lambda p, s: sent.append((p, s))
    )
    process.signal(signal.SIGTERM)
    now["stat"] = stat(10, "999")  # gone, and its PID given to another program
    process.signal(signal.SIGKILL)
    assert sent == [(10, signal.SIGTERM)]
    assert process.wait(1.0).returncode == 0


def test_a_program_that_never_started_carries_the_launchers_words() -> None:
    done = Result(("sh",), 2, f"{MARK} 0 {stat(10, '555')}\n", "sh: 1: cannot create /x/b.log\n")
    first, second = processes([RED, BLUE], done, stat=lambda pid: None)
    assert (first.pid, first.started_at) == (10, "555")
    assert (second.pid, second.started_at, second.running) == (0, None, False)
    assert "cannot create /x/b.log" in second.said()[1]


def test_the_fake_records_one_launcher_and_gives_pids_and_start_times() -> None:
    ex = RecordingExecutor()
    ex.start_time = "4242"
    started = start_detached(ex, [RED, BLUE], ["/a.log", "/b.log"])
    assert ex.commands == [launch_argv([RED, BLUE], ["/a.log", "/b.log"])]
    assert [(p.pid, p.started_at, p.command) for p in started] == [
        (100_000, "4242", RED),
        (100_001, "4242", BLUE),
    ]
    assert ex.started == started


def test_across_machines_each_machine_gets_its_own_launcher_in_one_go() -> None:
    a, b = RecordingExecutor(), RecordingExecutor()
    on_a, on_b = Command(RED.argv, machine="a"), Command(BLUE.argv, machine="b")
    also_a = Command(("true",), machine="a")
    started = start_detached(
        RoutingExecutor({"a": a, "b": b}), [on_a, on_b, also_a], ["/1", "/2", "/3"]
    )
    assert [p.command for p in started] == [on_a, on_b, also_a]  # the order asked
    assert a.commands == [launch_argv([on_a, also_a], ["/1", "/3"])]
    assert b.commands == [launch_argv([on_b], ["/2"])]


def test_an_executor_without_a_detached_start_starts_each_program_itself() -> None:
    script = ScriptExecutor()
    started = start_detached(script, [RED, BLUE], ["/a.log", "/b.log"])
    assert [p.command for p in started] == [RED, BLUE]
    assert script.lines == [RED.shell() + " &", BLUE.shell() + " &"]
    assert start_detached(script, [], []) == []


def test_a_machine_that_fails_leaves_the_others_programs_known() -> None:
    class Gone(RecordingExecutor):
        def start_detached(self, commands: object, logs: object) -> list[Process]:
            raise MachineUnreachableError("b", "ssh: connect to host b: No route to host")

    a = RecordingExecutor()
    on_a, on_b = Command(RED.argv, machine="a"), Command(BLUE.argv, machine="b")
    started = start_detached(RoutingExecutor({"a": a, "b": Gone()}), [on_a, on_b], ["/1", "/2"])
    assert started[0].pid == 100_000 and started[0].started_at == "1"
    assert (started[1].pid, started[1].running) == (0, False)
    assert "No route to host" in started[1].said()[1]
