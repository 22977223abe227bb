"""The sim-plant for the firmware emulator: the simulated robot (MuJoCo, through
`MujocoHardware`) whose joints are the emulator's motors. The emulator starts nothing; the
`Emulator(plant=...)` launcher runs this module with pipes on stdin and stdout.

Each message from the emulator's 1 ms tick carries the firmware time and every joint's
command; the plant steps the physics (whole physics steps) up to that time with the
commands the motors held, and answers with the joints' state and the IMU.
"""

from __future__ import annotations

import argparse
import gc
import os
import struct
import sys

import numpy as np


def _read_exact(fd: int, n: int) -> bytes:
    data = b""
    while len(data) < n:
        chunk = os.read(fd, n - len(data))
        if not chunk:
            raise EOFError
        data += chunk
    return data


def serve(robot: str, fd_in: int = 0, fd_out: int = 1, seed: int = 0) -> None:
    from velora_robot.hal.base import JointCommand
    from velora_robot.hal.mujoco import MujocoHardware
    from velora_robot.robots import get_spec

    spec = get_spec(robot)
    n = spec.n_joints
    hw = MujocoHardware(spec, period_s=spec.physics_dt, seed=seed)
    hw.configure()
    hw.activate()
    # The firmware waits for every answer: a garbage-collector pause of tens of ms would
    # stall its 1-ms tick. The loop makes nothing cyclic, so it runs without the collector.
    gc.collect()
    gc.freeze()
    gc.disable()
    dt = spec.physics_dt
    start_us, steps = None, 0
    zeros = np.zeros(n)
    size = 6 + 20 * n
    try:
        while True:
            msg = _read_exact(fd_in, size)
            now_us, enabled = struct.unpack_from("<IB", msg, 1)
            cmd = np.frombuffer(msg, "<f4", 5 * n, 6).reshape(n, 5).astype(float)
            if start_us is None:
                start_us = now_us
            elapsed = (now_us - start_us) * 1e-6
            on = bool(enabled)
            command = JointCommand(q=cmd[:, 0], dq=zeros, tau_ff=cmd[:, 3],
                                   kp=cmd[:, 1] if on else zeros, kd=cmd[:, 2] if on else zeros)
            while (steps + 1) * dt <= elapsed + 1e-9:
                hw.write(command)
                steps += 1
            s = hw.read()
            out = np.concatenate([np.stack([s.q, s.dq, s.tau], axis=1).ravel(), s.gyro,
                                  s.gravity]).astype("<f4")
            os.write(fd_out, out.tobytes())
    except EOFError:
        pass
    finally:
        hw.shutdown()


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--robot", required=True)
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args(argv)
    serve(args.robot, seed=args.seed)
    return 0


if __name__ == "__main__":
    sys.exit(main())
