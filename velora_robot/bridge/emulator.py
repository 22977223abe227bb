"""Build and run the firmware emulator (firmware_bridge/firmware/emulator.c): the C firmware
core on a pseudo-terminal with simulated motors, UART wire time and fault injection."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

from velora_robot.errors import ConfigError
from velora_robot.robots.spec import RobotSpec

FIRMWARE_DIR = Path(__file__).resolve().parents[2] / "firmware_bridge" / "firmware"


def build(target: str = "build/vb_emulator") -> Path:
    """Compile with the firmware's Makefile (gcc or $CC); returns the binary."""
    if not (FIRMWARE_DIR / "Makefile").is_file():
        raise ConfigError(f"firmware sources not found at {FIRMWARE_DIR}: the emulator is "
                          "built from a checkout of the velora-robot repository")
    result = subprocess.run(["make", "-s", "-C", str(FIRMWARE_DIR), target],
                            capture_output=True, text=True)
    if result.returncode != 0:
        raise ConfigError(f"building {target} in {FIRMWARE_DIR} failed:\n"
                          f"{result.stderr.strip() or result.stdout.strip()}")
    return FIRMWARE_DIR / target


class Emulator:
    """The emulator as a child process. `port` is a stable path (a symlink to the current
    pseudo-terminal, which follows a simulated reconnect); `pose` is where the simulated
    joints start (e.g. the robot's default pose). Use as a context manager."""

    def __init__(self, *, joints: int = 12, baud: int = 1_000_000, seed: int = 1,
                 link: str | Path | None = None, pose: list[float] | None = None,
                 plant: str | None = None, spin: bool = False) -> None:
        binary = build()
        self._tmp = None
        if link is None:
            self._tmp = tempfile.TemporaryDirectory(prefix="velora-emu-")
            link = Path(self._tmp.name) / "tty"
        self.port = str(link)
        self.baud = baud
        args = [str(binary), "--baud", str(baud), "--joints", str(joints), "--link",
                self.port, "--seed", str(seed),
                "--pose", ",".join(f"{q:.6f}" for q in (pose or [0.0]))] + \
            (["--spin"] if spin else [])
        self.plant = None
        fds: tuple[int, ...] = ()
        if plant is not None:  # sim-plant mode: the motors are the simulated robot's joints
            to_emu_r, to_emu_w = os.pipe()
            to_plant_r, to_plant_w = os.pipe()
            self.plant = subprocess.Popen(
                [sys.executable, "-m", "velora_robot.hil.plant", "--robot", plant],
                stdin=to_plant_r, stdout=to_emu_w)
            os.close(to_plant_r)
            os.close(to_emu_w)
            fds = (to_emu_r, to_plant_w)
            args += ["--plant-fd", f"{to_emu_r},{to_plant_w}"]
        self.proc = subprocess.Popen(args, stdin=subprocess.PIPE, stdout=subprocess.PIPE,
                                     stderr=subprocess.PIPE, text=True, bufsize=1,
                                     pass_fds=fds)
        for fd in fds:
            os.close(fd)
        line = self.proc.stdout.readline()
        if not line.startswith("READY"):
            err = self.proc.stderr.read()
            self.close()
            raise RuntimeError(f"the firmware emulator did not start: {line!r} {err}")

    @classmethod
    def for_robot(cls, spec: RobotSpec, *, baud: int = 1_000_000, sim_plant: bool = False,
                  spin: bool = False) -> Emulator:
        """The emulator with `spec`'s joints standing in its default pose, or (`sim_plant`)
        with the simulated robot as its motors."""
        return cls(joints=spec.n_joints, baud=baud, spin=spin,
                   pose=[j.default_pos for j in spec.joints],
                   plant=spec.name if sim_plant else None)

    def command(self, line: str) -> str:
        """Send one command (see emulator.c); returns its answer line."""
        if self.proc.poll() is not None:
            raise RuntimeError("the firmware emulator has exited")
        self.proc.stdin.write(line + "\n")
        self.proc.stdin.flush()
        answer = self.proc.stdout.readline().strip()
        if answer.startswith("ERROR"):
            raise ValueError(f"emulator: {answer}")
        return answer

    def stats(self) -> dict[str, Any]:
        """The emulator's counters and the firmware's state."""
        return json.loads(self.command("stats"))

    def inject(self, fault: str, *args: int) -> None:
        """drop N | corrupt N | delay MS N | stall MS | garbage N | disconnect MS |
        joint-error J BITS | estop 0/1."""
        self.command(" ".join([fault, *map(str, args)]))

    def close(self) -> None:
        if self.proc.poll() is None:
            try:
                self.proc.stdin.write("quit\n")
                self.proc.stdin.flush()
                self.proc.wait(timeout=2)
            except (OSError, subprocess.TimeoutExpired):
                self.proc.kill()
                self.proc.wait()
        for stream in (self.proc.stdin, self.proc.stdout, self.proc.stderr):
            if stream is not None:
                stream.close()
        if self.plant is not None:
            try:
                self.plant.wait(timeout=5)  # it ends when the emulator closes its pipe
            except subprocess.TimeoutExpired:
                self.plant.kill()
                self.plant.wait()
        if self._tmp is not None:
            self._tmp.cleanup()

    def __enter__(self) -> Emulator:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


def wait_for(path: str, timeout_s: float = 2.0) -> bool:
    """Wait until `path` exists (a reconnecting emulator's new port)."""
    end = time.monotonic() + timeout_s
    while time.monotonic() < end:
        if os.path.exists(path):
            return True
        time.sleep(0.005)
    return False
