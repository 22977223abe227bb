"""How far a simulated robot's base walked: the planar length of its path, from positions
taken once per `interval_s` of simulated time. A biped's pelvis sways sideways with every
step, which the interval averages out; a curve counts in full, where the start-to-end
displacement shrinks with every degree the heading drifts (0.90 of the path over a
1.6-rad arc)."""

from __future__ import annotations

import math


class BasePath:
    """Accumulates the base's path: `add(t_s, x, y)` each sample, `length_m` so far."""

    def __init__(self, interval_s: float = 1.0) -> None:
        if interval_s <= 0:
            raise ValueError(f"interval_s {interval_s}: above 0")
        self.interval_s = interval_s
        self._done_m = 0.0
        self._mark: tuple[float, float, float] | None = None  # (t, x, y) of the last point
        self._now: tuple[float, float] | None = None

    def add(self, t_s: float, x: float, y: float) -> None:
        """The base at (x, y) m at simulated time `t_s`."""
        if self._mark is None:
            self._mark = (t_s, x, y)
        elif t_s - self._mark[0] >= self.interval_s - 1e-9:
            self._done_m += math.hypot(x - self._mark[1], y - self._mark[2])
            self._mark = (t_s, x, y)
        self._now = (x, y)

    @property
    def length_m(self) -> float:
        """The path so far, the last part interval included."""
        if self._mark is None or self._now is None:
            return 0.0
        return self._done_m + math.hypot(self._now[0] - self._mark[1],
                                         self._now[1] - self._mark[2])
