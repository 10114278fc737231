"""The worker child: answers, raised errors and deaths are told apart; a dead child is replaced."""

import signal

from gfbench.measure.worker import ChildWorker


def test_answers_errors_and_a_death_each_come_back_and_the_next_call_gets_a_new_child():
    with ChildWorker(threads=1, timeout_s=120) as worker:
        answer = worker.call("json:dumps", {"obj": [1, 2]})
        raised = worker.call("json:loads", {"s": "{"})
        died = worker.call("os:abort", {})
        after = worker.call("json:dumps", {"obj": "again"})
    assert answer.ok and answer.value == "[1, 2]"
    assert raised.status == "raised" and raised.error.startswith("JSONDecodeError: ")
    assert died.status == "died" and died.signal == signal.SIGABRT
    assert "SIGABRT" in died.error and died.failure_status == "error"
    assert after.ok and after.value == '"again"'
    assert worker.started == 2  # the first child served three calls; one replaced it
