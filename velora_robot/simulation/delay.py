"""Delay lines of a batch of robots, as one query: per robot, values stamped with the physics
step from which they hold, and "the latest value stamped at or before step t". Actuation
latency is that query on the targets (stamped with their due step) and sensing latency is
that query on recorded sensor states (stamped with the step they were recorded at, asked
for `lag` steps ago)."""

from __future__ import annotations

import numpy as np

_EMPTY = np.iinfo(np.int64).min  # a slot never written since the last clear
_ALWAYS = _EMPTY + 1  # the value a clear leaves holds from any step on


class History:
    """A ring of `depth` stamped values of `width` floats per robot. Deep enough when no
    query reaches back past the `depth - 1` latest stamps."""

    def __init__(self, n: int, depth: int, width: int) -> None:
        self.at = np.full((n, depth), _EMPTY, dtype=np.int64)
        self.values = np.zeros((n, depth, width))
        self.next = np.zeros(n, dtype=np.int64)  # the slot each robot writes next
        self._rows = np.arange(n)

    def clear(self, i: int, value: np.ndarray) -> None:
        """Forget robot `i`'s values: `value` holds from any step on."""
        self.at[i] = _EMPTY
        self.at[i, 0] = _ALWAYS
        self.values[i, 0] = value
        self.next[i] = 1

    def push(self, values: np.ndarray, at: np.ndarray) -> None:
        """Add one value per robot (n, width), each holding from step `at` (n,) on."""
        slot = self.next % self.at.shape[1]
        self.at[self._rows, slot] = at
        self.values[self._rows, slot] = values
        self.next += 1

    def latest(self, t: np.ndarray) -> np.ndarray:
        """Per robot, the latest value stamped at or before step t: t (n,) gives (n, width),
        t (n, k) gives (n, k, width)."""
        t = np.asarray(t)
        at = self.at if t.ndim == 1 else self.at[:, None, :]
        slot = np.where(at <= t[..., None], at, _EMPTY).argmax(axis=-1)
        rows = self._rows if t.ndim == 1 else self._rows[:, None]
        return self.values[rows, slot]

    def get_state(self) -> dict[str, np.ndarray]:
        """The ring's arrays (copies), for an exact resume."""
        return {"at": self.at.copy(), "values": self.values.copy(), "next": self.next.copy()}

    def set_state(self, saved: dict[str, np.ndarray]) -> None:
        """Restore a `get_state()` result."""
        self.at[:], self.values[:], self.next[:] = saved["at"], saved["values"], saved["next"]


def depth_for(max_lag_steps: int, nstep: int) -> int:
    """Ring depth for values pushed once per period of `nstep` steps and asked for up to
    `max_lag_steps` back: the ones in flight, the one holding now, and one to spare."""
    return -(-max_lag_steps // max(nstep, 1)) + 2
