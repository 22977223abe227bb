"""Run an exported policy on the mock hardware and on the simulated robot, in Python:
Controller (observation, policy, action mapping), Safety and the timed ControlLoop. The mock
mirrors each target into its state (no dynamics: it tests what sits above the HAL), so the
rig's policy does not settle at the target there; on the simulated rig it does."""

from pathlib import Path

from velora_robot.hal import MockHardware, MujocoHardware
from velora_robot.robots import get_spec
from velora_robot.runtime import Controller, ControlLoop, Safety, SafetyConfig, load_policy

ROOT = Path(__file__).resolve().parents[1]
spec = get_spec("one_joint")
policy = load_policy(ROOT / "models" / "joint_track.onnx")  # checks its model card
for hardware in (MockHardware(spec), MujocoHardware(spec)):
    hardware.configure()  # open the link, first reading
    safety = Safety(spec, SafetyConfig(ramp_s=0.2, min_upright=-1.0))
    controller = Controller(hardware, policy, policy.card.interface, [0.5, 0.0],
                            safety=safety)  # command: hold 0.5 rad
    policy.reset()
    seen: list = []  # each cycle: what it read and sent (telemetry writes it all to a file)
    loop = ControlLoop(controller, command_hz=spec.control_hz)
    stats = loop.run(seconds=1.0, on_cycle=seen.append)
    # the loop has damped and switched the torque off, and closed the link
    print(f"{type(hardware).__name__}: joint at {seen[-1].state.q[0]:+.3f} rad after 1 s (asked "
          f"+0.500), {stats.summary()['cycles']} cycles, torque {hardware.torque_off}")
