"""The timed control loop: rate, statistics, skipped periods, signals, hardware errors."""

import os
import signal
import threading
import time

import numpy as np

from velora_robot.envs import SpotWalkTask
from velora_robot.hal import Lifecycle, MockHardware
from velora_robot.robots import get_spec
from velora_robot.runtime.controller import Controller
from velora_robot.runtime.loop import ControlLoop
from velora_robot.runtime.safety import Fault, Mode, Safety, SafetyConfig

SPOT = get_spec("spot")
SPOT_WALK = SpotWalkTask.policy_interface()


class CountingPolicy:
    def __init__(self, delay_s=0.0, slow_call=None):
        self.calls, self.resets, self.delay_s, self.slow_call = 0, 0, delay_s, slow_call

    def __call__(self, obs):
        self.calls += 1
        if self.calls == self.slow_call:
            time.sleep(self.delay_s)
        return np.zeros(12)

    def reset(self):
        self.resets += 1


def make(command_hz, policy=None, policy_every=1, ramp_s=0.05, hw=None):
    hw = hw or MockHardware(SPOT, period_s=1.0 / command_hz)
    safety = Safety(SPOT, SafetyConfig(ramp_s=ramp_s), dt_s=1.0 / command_hz)
    controller = Controller(hw, policy or CountingPolicy(), SPOT_WALK, np.zeros(3), safety=safety,
                            policy_every=policy_every)
    return ControlLoop(controller, command_hz), hw, safety


def test_the_loop_keeps_its_rate_reports_timing_and_hands_over_from_ramp_to_policy():
    loop, hw, _ = make(200)
    modes, times = [], []

    def seen(cycle):
        modes.append(cycle.mode)
        times.append(time.monotonic())

    stats = loop.run(cycles=100, on_cycle=seen)
    summary = stats.summary()
    span = times[-1] - times[0]  # 99 periods of 5 ms (set-up before the first is not timed)
    assert summary["cycles"] == 100 and 0.48 < span < 0.56
    assert summary["lateness_us"]["p50"] < 1000
    assert modes[0] is Mode.RAMP and modes[-1] is Mode.POLICY
    assert loop.controller.policy.resets == 1  # fresh state when the policy takes over
    assert hw.lifecycle is Lifecycle.FINALIZED


def test_missed_periods_are_skipped_not_run_in_a_burst():
    policy = CountingPolicy(delay_s=0.035, slow_call=3)
    loop, _, _ = make(100, policy=policy, ramp_s=0.01)
    starts = []
    loop.run(cycles=12, on_cycle=lambda c: starts.append(time.monotonic()))
    assert loop.stats.overruns >= 1 and loop.stats.skipped >= 2  # the 35 ms stall, at least
    gaps = np.diff(starts)
    # One late cycle runs at once (the robot must not wait another period for a command);
    # then the grid resumes: no run of back-to-back catch-up cycles.
    back_to_back = gaps < 0.001
    assert back_to_back.sum() <= 1
    # the skipped periods really passed: the run took as long as all its periods
    assert starts[-1] - starts[0] >= (len(starts) - 2 + loop.stats.skipped) * 0.01 - 0.002


def test_the_policy_runs_at_its_own_rate_within_the_command_rate():
    policy = CountingPolicy()
    loop, _, _ = make(200, policy=policy, policy_every=4, ramp_s=0.02)
    loop.run(cycles=84)
    assert 19 <= policy.calls <= 21  # 80 policy-mode cycles / 4


def test_sigint_damps_then_shuts_the_hardware_down_cleanly():
    loop, hw, safety = make(200, ramp_s=0.02)
    before = signal.getsignal(signal.SIGINT)  # SIG_IGN where the suite runs in the background
    timer = threading.Timer(0.15, lambda: os.kill(os.getpid(), signal.SIGINT))
    timer.start()
    loop.run(seconds=5.0)
    timer.join()
    assert safety.fault is Fault.SIGNAL and "SIGINT" in safety.detail
    assert np.all(hw.commands[-1].kp == 0) and hw.lifecycle is Lifecycle.FINALIZED
    assert signal.getsignal(signal.SIGINT) is before  # the handler it found is back


def test_a_hardware_error_mid_run_trips_damping():
    class Flaky(MockHardware):
        reads = 0

        def _read(self):
            self.reads += 1
            if self.reads == 30:
                raise OSError("no reply from the motor board")
            return super()._read()

    loop, _, safety = make(200, hw=Flaky(SPOT, period_s=0.005))
    loop.run(cycles=40)
    assert safety.fault is Fault.HARDWARE and "no reply" in safety.detail


def test_realtime_setup_says_plainly_what_it_could_do():
    import json
    import subprocess
    import sys

    # In a child: real-time scheduling must not leak into the rest of the test run.
    code = ("import json; from velora_robot.runtime.loop import realtime_setup; "
            "print(json.dumps(realtime_setup(cpu=0)))")
    run = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True)
    notes = json.loads(run.stdout)
    assert any(n.startswith("SCHED_FIFO") for n in notes)
    assert any(n.startswith("mlockall") for n in notes)
    assert any("CPU 0" in n for n in notes)


def test_the_loop_runs_without_the_garbage_collector_and_restores_it():
    import gc

    seen = []
    loop, _, _ = make(200, ramp_s=0.01)
    loop.run(cycles=5, on_cycle=lambda c: seen.append(gc.isenabled()))
    assert seen == [False] * 5 and gc.isenabled()


def test_a_stop_requested_during_set_up_still_ends_in_damping():
    loop, hw, safety = make(200, ramp_s=0.5)
    loop.request_stop("SIGTERM")  # arrives before the loop has started
    loop.run(seconds=5.0)
    assert safety.fault is Fault.SIGNAL and np.all(hw.commands[-1].kp == 0)
    assert len(loop.stats.lateness_us) <= 10
