"""Child processes: each call gets a fresh one, with the command's own environment; answers,
raised errors, deaths and hangs are told apart."""

import os
import signal
import subprocess
import sys
from pathlib import Path

import pytest

from gfbench.measure.memory import MMAP_THRESHOLD
from gfbench.measure.worker import call_in_child


def test_answers_errors_and_deaths_come_back_each_from_a_fresh_process():
    answer = call_in_child("json:dumps", {"obj": [1, 2]}, threads=1)
    raised = call_in_child("json:loads", {"s": "{"}, threads=1)
    died = call_in_child("os:abort", {}, threads=1)
    after = call_in_child("json:dumps", {"obj": "again"}, threads=1)
    assert answer.ok and answer.value == "[1, 2]"
    assert raised.status == "raised" and raised.error.startswith("JSONDecodeError: ")
    assert died.status == "died" and died.signal == signal.SIGABRT
    assert "SIGABRT" in died.error and died.failure_status == "error"
    assert after.ok and after.value == '"again"'
    pids = [r.pid for r in (answer, raised, died, after)]
    assert len(set(pids)) == 4 and os.getpid() not in pids


def test_a_result_that_cannot_be_sent_back_is_an_error_not_a_death():
    result = call_in_child("child_steps:allocate_step", {"mib": 1})  # a local function
    assert result.status == "raised" and "cannot be sent back" in result.error


def test_a_child_killed_by_sigkill_reads_as_out_of_memory():
    killed = call_in_child("child_steps:die_by", {"signum": signal.SIGKILL})
    assert killed.status == "died" and killed.failure_status == "oom"
    assert "out of memory" in killed.error


def test_a_child_that_does_not_answer_is_killed_after_the_timeout():
    result = call_in_child("child_steps:sleep", {"seconds": 60}, timeout_s=1)
    assert result.status == "timeout" and result.failure_status == "error"
    assert "after 1 s" in result.error


def test_a_timing_child_has_the_commands_environment_and_default_allocator(monkeypatch):
    # A fixed mmap threshold (what the memory child needs) made every timing 35-70% slower:
    # each freed block went back to the kernel and came back as fresh, faulting pages.
    timing = call_in_child("child_steps:environment_and_pid", {})
    memory = call_in_child("child_steps:environment_and_pid", {}, mmap_threshold=MMAP_THRESHOLD)
    env, pid = timing.value
    assert not {k for k in env if k.startswith("MALLOC_")} - {
        k for k in os.environ if k.startswith("MALLOC_")}
    assert "GFBENCH_WORKER" not in env and pid != os.getpid() != memory.value[1]
    reused = call_in_child("child_steps:page_faults_of_reuse", {}).value
    fresh = call_in_child("child_steps:page_faults_of_reuse", {},
                          mmap_threshold=MMAP_THRESHOLD).value
    pages_per_round = 8 * 2**20 // 4096  # page_faults_of_reuse's 8 MiB buffer, 20 rounds
    assert reused < 4 * pages_per_round < 15 * pages_per_round < fresh, (reused, fresh)


@pytest.mark.parametrize("threads", [1, 2])
def test_the_child_uses_the_threads_it_is_given(threads):
    result = call_in_child("torch:get_num_threads", {}, threads=threads)
    assert result.value == threads


def test_a_child_never_runs_the_callers_script(tmp_path):
    # multiprocessing's forkserver would import the calling script again in every child: its
    # state (and an unguarded script's side effects) would then depend on who called gfbench
    script = tmp_path / "caller.py"
    script.write_text("import sys\nprint('imported', file=sys.stderr)\n"
                      "from gfbench.measure.worker import call_in_child\n"
                      "print(call_in_child('child_steps:main_module', {}).value)\n")
    env = {**os.environ, "PYTHONPATH": os.pathsep.join([str(Path(__file__).parent),
                                                        *sys.path])}
    done = subprocess.run([sys.executable, str(script)], capture_output=True, text=True,
                          env=env, timeout=120)
    assert done.returncode == 0, done.stderr[-2000:]
    assert done.stdout.strip().endswith(os.path.join("gfbench", "measure", "worker.py"))
    assert done.stderr.count("imported") == 1


def test_a_child_ended_by_ctrl_c_stops_the_caller_instead_of_becoming_a_row():
    with pytest.raises(KeyboardInterrupt):
        call_in_child("child_steps:die_by", {"signum": signal.SIGINT})
    assert call_in_child("json:dumps", {"obj": 1}).value == "1"  # the next call still runs


def test_a_call_abandoned_before_its_child_starts_ends_quietly(tmp_path):
    from gfbench.measure import worker

    err = tmp_path / "stderr"
    pid = os.fork()
    if pid == 0:  # the forked child, as the server would start it after the caller's Ctrl-C
        os.dup2(os.open(err, os.O_WRONLY | os.O_CREAT), 2)
        try:
            worker._child_main({"log_path": str(tmp_path / "removed" / "log"),
                                "mmap_threshold": None, "threads": None})
        finally:
            os._exit(99)
    _, status = os.waitpid(pid, 0)
    assert os.waitstatus_to_exitcode(status) == 1
    assert err.read_text() == ""  # no traceback on the user's terminal


def test_ctrl_c_while_the_fork_server_exits_kills_it_quietly(monkeypatch):
    """Ctrl-C in the second the server takes to exit at the end of a run (every row already
    written) ends it without a traceback."""
    from gfbench.measure.worker import ForkServer

    server = ForkServer()
    process = server.ensure()
    real_wait = process.wait
    calls = []

    def interrupted_wait(timeout=None):
        calls.append(timeout)
        if len(calls) == 1:
            raise KeyboardInterrupt
        return real_wait(timeout)

    monkeypatch.setattr(process, "wait", interrupted_wait)
    server.close()  # raises nothing
    assert calls == [30, None] and process.poll() is not None and server.process is None
