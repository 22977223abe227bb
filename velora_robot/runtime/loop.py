"""`ControlLoop`: the controller on a monotonic clock.

Each period: sleep until shortly before the deadline, spin the rest (Python's sleep alone
is late by 75-150 us typically and milliseconds at worst); if a deadline was missed, the
missed periods are skipped rather than run in a burst. Statistics cover period lateness
(p50/p99/max), overruns and compute time; with `telemetry`, every cycle is also written to
a file. SIGINT and SIGTERM put the robot in damping for
a few cycles, then the hardware is deactivated and shut down. Optional real-time settings
(SCHED_FIFO, mlockall, CPU pinning) are applied when permitted and reported when not.
"""

from __future__ import annotations

import contextlib
import ctypes
import ctypes.util
import gc
import os
import signal
import time
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from velora_robot.hal.base import HardwareError
from velora_robot.runtime.controller import Controller
from velora_robot.runtime.estop import QUIT, EStop
from velora_robot.runtime.safety import Fault, Mode
from velora_robot.runtime.telemetry import Telemetry

SPIN_S = 300e-6
DAMPING_CYCLES_AFTER_STOP = 10


@dataclass
class LoopStats:
    """Timing of a run: lateness of each cycle's start after its deadline, compute time of
    each cycle (both in microseconds), overruns and skipped periods."""

    period_s: float
    lateness_us: list[float] = field(default_factory=list)
    compute_us: list[float] = field(default_factory=list)
    overruns: int = 0
    skipped: int = 0

    def summary(self) -> dict[str, Any]:
        """p50/p99/max of lateness and compute time, overruns, cycles."""
        def pct(values: list[float]) -> dict[str, float]:
            a = np.array(values) if values else np.zeros(1)
            return {"p50": float(np.percentile(a, 50)), "p99": float(np.percentile(a, 99)),
                    "max": float(a.max())}

        return {"cycles": len(self.lateness_us), "period_us": self.period_s * 1e6,
                "lateness_us": pct(self.lateness_us), "compute_us": pct(self.compute_us),
                "overruns": self.overruns, "skipped_periods": self.skipped}


def realtime_setup(cpu: int | None = None, priority: int = 80) -> list[str]:
    """Try SCHED_FIFO, mlockall and CPU pinning; returns a plain message for each."""
    notes = []
    try:
        os.sched_setscheduler(0, os.SCHED_FIFO, os.sched_param(priority))
        notes.append(f"SCHED_FIFO priority {priority}: on")
    except (PermissionError, OSError, AttributeError) as exc:
        notes.append(f"SCHED_FIFO: not permitted ({exc}); running with normal scheduling")
    libc = ctypes.CDLL(ctypes.util.find_library("c") or "libc.so.6", use_errno=True)
    if libc.mlockall(3) == 0:  # MCL_CURRENT | MCL_FUTURE
        notes.append("mlockall: on")
    else:
        notes.append(f"mlockall: not permitted ({os.strerror(ctypes.get_errno())}); memory "
                     "may page")
    if cpu is not None:
        try:
            os.sched_setaffinity(0, {cpu})
            notes.append(f"pinned to CPU {cpu}")
        except OSError as exc:
            notes.append(f"CPU pinning to {cpu}: not possible ({exc})")
    return notes


class ControlLoop:
    """Runs a `Controller` at `command_hz` (the policy every command_hz / policy_hz cycles)."""

    def __init__(self, controller: Controller, command_hz: float, *,
                 spin_s: float = SPIN_S, telemetry: Telemetry | None = None,
                 estop: EStop | None = None) -> None:
        self.controller, self.period_s, self.spin_s = controller, 1.0 / command_hz, spin_s
        self.telemetry, self.estop = telemetry, estop
        self.stats = LoopStats(self.period_s)
        self._stop_reason: str | None = None

    def request_stop(self, reason: str = "stop requested") -> None:
        """Ask the loop to damp and finish (safe from a signal handler)."""
        self._stop_reason = reason
        if self.controller.safety is not None:
            self.controller.safety.trip(Fault.SIGNAL, reason)

    def run(self, seconds: float | None = None, cycles: int | None = None,
            on_cycle: Any = None) -> LoopStats:
        """Configure and activate the hardware, run, then deactivate and shut down."""
        hw = self.controller.hardware
        previous = {s: signal.getsignal(s) for s in (signal.SIGINT, signal.SIGTERM)}
        for sig in previous:
            signal.signal(sig, lambda signum, _: self.request_stop(signal.Signals(signum).name))
        gc_was_enabled, frozen = gc.isenabled(), False
        try:
            if self.estop is not None:
                self.estop.open()
            if hw.lifecycle.value == "unconfigured":
                hw.configure()
            # The cyclic garbage collector can pause for milliseconds at any allocation;
            # the loop allocates little and nothing cyclic, so it runs without it. The
            # full collection comes before activation: in a large process it takes long
            # enough to trip a motor board's watchdog.
            gc.collect()
            gc.freeze()
            gc.disable()
            frozen = True
            hw.activate()
            self.controller.start()
            if self._stop_reason is not None:  # a signal during set-up: start() cleared it
                self.request_stop(self._stop_reason)
            self._loop(seconds, cycles, on_cycle)
        finally:
            if frozen:
                if gc_was_enabled:
                    gc.enable()
                gc.unfreeze()
            for sig, handler in previous.items():
                signal.signal(sig, handler)
            try:
                if hw.lifecycle.value == "active":
                    # On failure the HAL is in error, and shutdown tries torque off again.
                    with contextlib.suppress(HardwareError):
                        hw.deactivate()
                hw.shutdown()
            finally:
                if self.estop is not None:
                    self.estop.close()
                if self.telemetry is not None:
                    self.telemetry.close()
        return self.stats

    def _loop(self, seconds: float | None, cycles: int | None, on_cycle: Any) -> None:
        period, stats, safety = self.period_s, self.stats, self.controller.safety
        start = time.monotonic()
        deadline = start + period
        count, damping_left = 0, DAMPING_CYCLES_AFTER_STOP
        while True:
            self._wait_until(deadline)
            now = time.monotonic()
            late = now - deadline
            missed = late > period
            if missed:  # skip the periods we lost instead of bursting to catch up
                skip = int(late // period)
                deadline += skip * period
                stats.overruns += 1
                stats.skipped += skip
            if safety is not None:
                safety.deadline(missed)
            if self.estop is not None:
                self._poll_estop()
            cycle = self.controller.cycle()
            compute_us = (time.monotonic() - now) * 1e6
            stats.lateness_us.append(late * 1e6)
            stats.compute_us.append(compute_us)
            if self.telemetry is not None:
                self.telemetry.record(cycle, late * 1e6, compute_us)
            if on_cycle is not None:
                on_cycle(cycle)
            count += 1
            deadline += period
            if self._stop_reason is not None:
                damping_left -= 1
                if damping_left <= 0 or safety is None or safety.mode is not Mode.DAMPING:
                    return
            elif (cycles is not None and count >= cycles) or \
                    (seconds is not None and now - start >= seconds):
                return

    def _poll_estop(self) -> None:
        event = self.estop.poll()
        if event == QUIT:
            if self._stop_reason is None:
                self.request_stop("quit key pressed")
        elif event is not None:
            if self.controller.safety is None:
                self.request_stop(event)
            else:
                self.controller.safety.trip(Fault.ESTOP, event)

    def _wait_until(self, deadline: float) -> None:
        remaining = deadline - time.monotonic() - self.spin_s
        if remaining > 0:
            time.sleep(remaining)
        while time.monotonic() < deadline:
            pass
