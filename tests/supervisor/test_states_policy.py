"""The state table and the restart policy, without processes (injected clock and random source)."""

from __future__ import annotations

import random

import pytest

from wispd.config.model import RestartPolicy
from wispd.supervisor.policy import ExitInfo, RestartTracker
from wispd.supervisor.states import TRANSITIONS, InvalidTransition, State, StateHolder


def test_every_state_has_a_row_and_no_dead_ends():
    assert set(TRANSITIONS) == set(State)
    for state, targets in TRANSITIONS.items():
        assert targets, state


@pytest.mark.parametrize("old,new", [(State.STOPPED, State.RUNNING), (State.RUNNING, State.STARTING),
                                     (State.FATAL, State.RUNNING), (State.STOPPING, State.RUNNING)])
def test_invalid_transitions_are_refused(old, new):
    holder = StateHolder("x")
    holder.state = old
    with pytest.raises(InvalidTransition):
        holder.transition(new)


def test_transition_records_history():
    holder = StateHolder("x")
    holder.transition(State.STARTING, "pid 1")
    holder.transition(State.RUNNING, "ready")
    assert [(c.old, c.new, c.reason) for c in holder.history] == [
        (State.STOPPED, State.STARTING, "pid 1"), (State.STARTING, State.RUNNING, "ready")]


def tracker(**kw) -> RestartTracker:
    return RestartTracker(RestartPolicy(jitter=0.0, **kw), random.Random(1))


def test_backoff_grows_exponentially_and_caps():
    t = tracker(backoff_initial=1, backoff_factor=2, backoff_max=5, max_restarts=100, window=1000)
    delays = [t.decide(ExitInfo(1, None), None, float(i)).delay for i in range(5)]
    assert delays == [1, 2, 4, 5, 5]
    t.reset_backoff()
    assert t.decide(ExitInfo(1, None), None, 10.0).delay == 1


def test_jitter_stays_within_bounds():
    t = RestartTracker(RestartPolicy(backoff_initial=1, jitter=0.2, max_restarts=1000, window=1), random.Random(3))
    for i in range(200):
        t.reset_backoff()
        assert 0.8 <= t.decide(ExitInfo(1, None), None, i * 10.0).delay <= 1.2


def test_crash_loop_window_goes_fatal_and_slides():
    t = tracker(max_restarts=3, window=10)
    assert [t.decide(ExitInfo(1, None), None, x).action for x in (0, 1, 2, 3)] == [
        "restart", "restart", "restart", "fatal"]
    t2 = tracker(max_restarts=3, window=10)
    assert [t2.decide(ExitInfo(1, None), None, x).action for x in (0, 5, 11, 16, 22)] == ["restart"] * 5


def test_exit_classification_by_policy():
    clean, crash, config, killed = ExitInfo(0, None), ExitInfo(2, None), ExitInfo(78, None), ExitInfo(None, 9)
    assert tracker(policy="permanent").decide(clean, None, 0).action == "restart"
    assert tracker(policy="transient").decide(clean, None, 0).action == "exited"
    assert tracker(policy="transient").decide(crash, None, 0).action == "restart"
    assert tracker(policy="transient").decide(killed, None, 0).reason == "signal"
    assert tracker(policy="temporary").decide(crash, None, 0).action == "exited"
    assert tracker(policy="permanent").decide(config, None, 0).action == "fatal"
    # a child we killed for a cause failed, whatever its exit status
    assert tracker(policy="transient").decide(clean, "heartbeat", 0).reason == "heartbeat"
    assert killed.describe() == "signal SIGKILL" and config.describe().startswith("exit 78")
    assert ExitInfo.from_returncode(-15).describe() == "signal SIGTERM"
