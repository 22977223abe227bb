"""`EStop`: the emergency-stop inputs the control loop polls once per cycle.

Sources (any may be switched off in the launch file):
- a key on the controlling terminal: space or `e` trips the e-stop, `q` asks the loop to
  stop cleanly (damping, then shutdown);
- a file that appears, e.g. `touch /tmp/velora.estop` from another shell, or written by a
  daemon that watches a physical e-stop button on a GPIO line;
- a signal (SIGUSR1 by default), e.g. `pkill -USR1 -f "velora-robot run"`.
Once tripped the robot stays in damping until the program is started again.
"""

from __future__ import annotations

import os
import select
import signal
import sys
from pathlib import Path
from typing import Any

from velora_robot.errors import ConfigError

QUIT = "quit"
# Signals that may trip the e-stop: catchable, and not the loop's own stop signals.
ESTOP_SIGNALS = ("SIGUSR1", "SIGUSR2", "SIGHUP", "SIGQUIT", "SIGALRM")
ESTOP_KEYS, QUIT_KEYS = (" ", "e", "E"), ("q", "Q")


class EStop:
    """Polled every cycle (a few microseconds): `poll()` returns None, `QUIT`, or the reason
    for an e-stop (which source fired)."""

    def __init__(self, *, keys: bool = True, file: str | Path | None = None,
                 signal_name: str | None = "SIGUSR1") -> None:
        if signal_name is not None and signal_name not in ESTOP_SIGNALS:
            raise ConfigError(f"e-stop signal {signal_name!r}: use one of "
                              f"{', '.join(ESTOP_SIGNALS)}")
        self.keys, self.file = keys, None if file is None else str(file)
        self.signal_name = signal_name
        self._fd: int | None = None
        self._term: Any = None
        self._signalled = False
        self._previous_handler: Any = None

    def describe(self) -> str:
        """How to press it, for the status line."""
        ways = []
        if self._fd is not None:
            ways.append("space = e-stop, q = quit")
        if self.file is not None:
            ways.append(f"touch {self.file}")
        if self.signal_name is not None:
            ways.append(f"kill -{self.signal_name[3:]} {os.getpid()}")
        return "; ".join(ways) or "no e-stop input configured"

    def open(self) -> None:
        """Start listening (terminal in cbreak mode when it is one; the signal handler)."""
        if self.file is not None and os.path.exists(self.file):
            raise ConfigError(f"e-stop file {self.file} exists before the start: remove "
                              "it once the robot is safe")
        if self.file is not None and not Path(self.file).parent.is_dir():
            raise ConfigError(f"e-stop file {self.file}: its folder does not exist, so the "
                              "file could never appear and the e-stop would never fire")
        if self.keys and sys.stdin is not None and sys.stdin.isatty():
            import termios
            import tty

            self._fd = sys.stdin.fileno()
            self._term = termios.tcgetattr(self._fd)
            tty.setcbreak(self._fd)
        if self.signal_name is not None:
            sig = getattr(signal, self.signal_name)
            self._previous_handler = signal.signal(sig, self._on_signal)

    def close(self) -> None:
        """Restore the terminal and the signal handler."""
        if self._fd is not None:
            import termios

            termios.tcsetattr(self._fd, termios.TCSADRAIN, self._term)
            self._fd = None
        if self.signal_name is not None and self._previous_handler is not None:
            signal.signal(getattr(signal, self.signal_name), self._previous_handler)
            self._previous_handler = None

    def _on_signal(self, signum: int, frame: Any) -> None:
        self._signalled = True

    def poll(self) -> str | None:
        """What happened since the last poll (None when nothing)."""
        if self._signalled:
            return f"{self.signal_name} received"
        if self.file is not None and os.path.exists(self.file):
            return f"e-stop file {self.file} appeared"
        if self._fd is not None and select.select([self._fd], [], [], 0)[0]:
            key = os.read(self._fd, 1).decode(errors="replace")
            if key in ESTOP_KEYS:
                return "e-stop key pressed"
            if key in QUIT_KEYS:
                return QUIT
        return None
