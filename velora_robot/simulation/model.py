"""Build the MuJoCo model of a robot from its spec.

Whatever actuators the MJCF had are replaced by one PD servo per spec joint, in spec order:
MuJoCo evaluates tau = kp (target - q) - kd dq, clipped to the torque limit, at every physics
step inside mj_step, which is what a motor driver's position loop does. The `fast` variant
drops visual meshes and textures, keeps contacts only between the feet and the world and sizes
the simulation arena to that (training: about 1.2 MB per Spot instead of 20 MB); `full`
keeps everything (rendering, evaluation).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

import mujoco
import numpy as np

from velora_robot.errors import ConfigError
from velora_robot.robots.sources import mjcf_path
from velora_robot.robots.spec import RobotSpec
from velora_robot.simulation.physics import Physics

Variant = Literal["fast", "full"]

# The fast variant's MjData arena (contacts, constraints, solver scratch). MuJoCo's default
# is sized for any scene (14.7 MB for Spot); Spot walking with random actions and resets uses
# at most 35 KB with only its feet colliding, so 1 MiB leaves a wide margin and a thousand
# robots fit in memory (issue 20).
FAST_ARENA_BYTES = 1 << 20


@dataclass(frozen=True)
class ModelIndex:
    """Where the spec's parts live in the compiled model."""

    qpos: np.ndarray  # qpos address of each spec joint
    dof: np.ndarray  # dof address of each spec joint
    base_body: int | None  # body id of the floating base
    base_qpos: int | None  # qpos address of the base free joint (pos 3 + quat 4)
    base_dof: int | None  # dof address of the base free joint (lin 3 + ang 3, local frame)
    feet: np.ndarray  # geom ids of the feet
    touch: np.ndarray  # sensordata address of each foot's touch sensor


def build_model(spec: RobotSpec, source: str = "default", variant: Variant = "fast",
                physics: Physics | None = None) -> tuple[mujoco.MjModel, ModelIndex]:
    """Compile the robot's MJCF with PD servos from the spec, and `physics`' contact and
    solver settings; return the model and index."""
    if variant not in ("fast", "full"):
        raise ConfigError(f"model variant must be 'fast' or 'full', got {variant!r}")
    src = spec.sources.get(source)
    path = mjcf_path(spec, source)
    try:
        mj = mujoco.MjSpec.from_file(str(path))
    except Exception as exc:  # MuJoCo raises plain ValueError with its parser message
        raise ConfigError(f"cannot load MJCF {path}: {exc}") from exc
    mj.option.timestep = spec.physics_dt
    for key in list(mj.keys):  # keyframes sized for the old actuators
        mj.delete(key)
    for actuator in list(mj.actuators):
        mj.delete(actuator)
    known = {j.name for j in mj.joints}
    for joint, mjcf_joint in zip(spec.joints, src.joints, strict=True):
        if mjcf_joint not in known:
            raise ConfigError(f"{path}: joint {mjcf_joint!r} (spec joint {joint.name!r}) "
                              "is not in the model")
        mj.add_actuator(
            name=f"servo_{joint.name}", target=mjcf_joint, trntype=mujoco.mjtTrn.mjTRN_JOINT,
            gaintype=mujoco.mjtGain.mjGAIN_FIXED, gainprm=[joint.kp] + [0] * 9,
            biastype=mujoco.mjtBias.mjBIAS_AFFINE,
            biasprm=[0, -joint.kp, -joint.kd] + [0] * 7,
            forcelimited=mujoco.mjtLimited.mjLIMITED_TRUE,
            forcerange=[-joint.torque_limit, joint.torque_limit],
            ctrllimited=mujoco.mjtLimited.mjLIMITED_TRUE, ctrlrange=list(joint.pos_limit),
        )
    feet = set(src.feet)
    missing = feet - {g.name for g in mj.geoms}
    if missing:
        raise ConfigError(f"{path}: foot geom(s) {sorted(missing)} are not in the model")
    if variant == "fast":
        _strip_to_feet(mj, feet)
    _add_foot_sensors(mj, src.feet)
    if physics is not None:
        _apply_physics(mj, physics, feet)
    try:
        model = mj.compile()
    except Exception as exc:
        raise ConfigError(f"cannot compile MJCF {path}: {exc}") from exc
    return model, _index(model, spec, src.joints, src.base_body, src.feet)


def _apply_physics(mj: mujoco.MjSpec, physics: Physics, feet: set[str]) -> None:
    """Set the options `physics` gives (the others stay as the MJCF has them)."""
    opt = mj.option
    if physics.cone is not None:
        opt.cone = {"pyramidal": mujoco.mjtCone.mjCONE_PYRAMIDAL,
                    "elliptic": mujoco.mjtCone.mjCONE_ELLIPTIC}[physics.cone]
    if physics.impratio is not None:
        opt.impratio = physics.impratio
    if physics.solver is not None:
        opt.solver = getattr(mujoco.mjtSolver, f"mjSOL_{physics.solver.upper()}")
    if physics.iterations is not None:
        opt.iterations = physics.iterations
    if physics.ls_iterations is not None:
        opt.ls_iterations = physics.ls_iterations
    if physics.foot_condim is not None:
        for geom in mj.geoms:
            if geom.name in feet:
                geom.condim = physics.foot_condim
    if not physics.frictionloss:
        for joint in mj.joints:
            joint.frictionloss = 0.0


def _add_foot_sensors(mj: mujoco.MjSpec, feet: tuple[str, ...]) -> None:
    """A touch sensor on a site slightly larger than each foot: contact force, read in the
    sensor data (cheaper than scanning the contact list of every robot every step)."""
    geoms = {g.name: g for g in mj.geoms}
    for name in feet:
        geom = geoms[name]
        site = geom.parent.add_site(name=f"touch_{name}", pos=geom.pos, quat=geom.quat,
                                    type=geom.type, size=geom.size * 1.2)
        mj.add_sensor(name=f"touch_{name}", type=mujoco.mjtSensor.mjSENS_TOUCH,
                      objtype=mujoco.mjtObj.mjOBJ_SITE, objname=site.name)


def _strip_to_feet(mj: mujoco.MjSpec, feet: set[str]) -> None:
    """Delete visual-only geoms and unused meshes; only feet and world geoms collide."""
    world = mj.worldbody
    for geom in list(mj.geoms):
        visual_only = geom.contype == 0 and geom.conaffinity == 0
        if visual_only and geom.type == mujoco.mjtGeom.mjGEOM_MESH:
            mj.delete(geom)
        elif geom.name not in feet and geom.parent.name != world.name:
            geom.contype = 0
            geom.conaffinity = 0
    used = {g.meshname for g in mj.geoms}
    for mesh in list(mj.meshes):
        if mesh.name not in used:
            mj.delete(mesh)
    # Nothing is rendered: textures (5 MB of skybox and floor for Spot) go, and the arena
    # shrinks to what feet-only contacts need.
    for material in mj.materials:
        material.textures = [""] * len(material.textures)
    for texture in list(mj.textures):
        mj.delete(texture)
    mj.memory = FAST_ARENA_BYTES


def _index(model: mujoco.MjModel, spec: RobotSpec, joints: tuple[str, ...],
           base_body: str | None, feet: tuple[str, ...]) -> ModelIndex:
    ids = [model.joint(name).id for name in joints]
    base = base_qpos = base_dof = None
    if base_body is not None:
        base = model.body(base_body).id
        free = [j for j in range(model.njnt) if model.jnt_bodyid[j] == base
                and model.jnt_type[j] == mujoco.mjtJoint.mjJNT_FREE]
        if not free:
            raise ConfigError(f"robot {spec.name!r}: base body {base_body!r} has no free joint")
        base_qpos, base_dof = int(model.jnt_qposadr[free[0]]), int(model.jnt_dofadr[free[0]])
    return ModelIndex(
        qpos=model.jnt_qposadr[ids].copy(), dof=model.jnt_dofadr[ids].copy(), base_body=base,
        base_qpos=base_qpos, base_dof=base_dof,
        feet=np.array([model.geom(name).id for name in feet], dtype=int),
        touch=np.array([model.sensor_adr[model.sensor(f"touch_{name}").id] for name in feet],
                       dtype=int),
    )
