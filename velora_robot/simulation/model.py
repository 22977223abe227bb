"""Build the MuJoCo model of a robot from its spec.

Whatever actuators the MJCF had are replaced by one PD servo per spec joint, in spec order:
MuJoCo evaluates tau = kp (target - q) - kd dq, clipped to the torque limit, at every physics
step inside mj_step, which is what a motor driver's position loop does. A held joint (one the
policy does not drive) becomes a joint spring at its default pose with damping: the same PD
law at the physics rate with a fixed target. A foot may be several geoms (a sole's contact
points); each gets a touch sensor and the foot touches when any of them does. The `fast` variant
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
from velora_robot.robots.spec import ModelSource, RobotSpec
from velora_robot.simulation.physics import Physics

Variant = Literal["fast", "full"]

# The fast variant's MjData arena (contacts, constraints, solver scratch). MuJoCo's default
# is sized for any scene (14.7 MB for Spot); Spot walking with random actions and resets uses
# at most 35 KB with only its feet colliding, so 1 MiB leaves a wide margin and a thousand
# robots fit in memory (issue 20).
FAST_ARENA_BYTES = 1 << 20
# Foot shapes whose lowest point is the centre less the first size (the radius).
_ROUND = (int(mujoco.mjtGeom.mjGEOM_SPHERE), int(mujoco.mjtGeom.mjGEOM_CAPSULE))


@dataclass(frozen=True)
class ModelIndex:
    """Where the spec's parts live in the compiled model."""

    qpos: np.ndarray  # qpos address of each spec joint
    dof: np.ndarray  # dof address of each spec joint
    base_body: int | None  # body id of the floating base
    base_qpos: int | None  # qpos address of the base free joint (pos 3 + quat 4)
    base_dof: int | None  # dof address of the base free joint (lin 3 + ang 3, local frame)
    feet: np.ndarray  # geom ids of the feet, foot after foot
    touch: np.ndarray  # sensordata address of each foot geom's touch sensor, as `feet`
    foot_start: np.ndarray  # where each foot's geoms start in `feet` and `touch`
    foot_z: np.ndarray  # sensordata address of each foot geom's world height, as `feet`
    foot_radius: np.ndarray  # each foot geom's radius (spheres, capsules; else 0), m
    held_qpos: np.ndarray  # qpos address of each held joint
    held_dof: np.ndarray  # dof address of each held joint

    def contacts(self, sensordata: np.ndarray) -> np.ndarray:
        """Per foot (..., n_feet), whether any of its geoms touches something."""
        touching = sensordata[..., self.touch] > 0
        return np.logical_or.reduceat(touching, self.foot_start, axis=-1)

    def foot_heights(self, sensordata: np.ndarray) -> np.ndarray:
        """Per foot (..., n_feet), the height of its lowest point above z = 0, m (from each
        geom's centre less its radius; a geom of another shape counts by its centre)."""
        lowest = sensordata[..., self.foot_z] - self.foot_radius
        return np.minimum.reduceat(lowest, self.foot_start, axis=-1)


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
    known = {j.name: j for j in mj.joints}
    for joint, mjcf_joint in zip((*spec.joints, *spec.held), (*src.joints, *src.held),
                                 strict=True):
        if mjcf_joint not in known:
            raise ConfigError(f"{path}: joint {mjcf_joint!r} (spec joint {joint.name!r}) "
                              "is not in the model")
    for joint, mjcf_joint in zip(spec.held, src.held, strict=True):
        held = known[mjcf_joint]
        held.stiffness = [joint.kp, 0.0, 0.0]
        held.damping = [joint.kd, 0.0, 0.0]
        held.springref = joint.default_pos
    for joint, mjcf_joint in zip(spec.joints, src.joints, strict=True):
        mj.add_actuator(
            name=f"servo_{joint.name}", target=mjcf_joint, trntype=mujoco.mjtTrn.mjTRN_JOINT,
            gaintype=mujoco.mjtGain.mjGAIN_FIXED, gainprm=[joint.kp] + [0] * 9,
            biastype=mujoco.mjtBias.mjBIAS_AFFINE,
            biasprm=[0, -joint.kp, -joint.kd] + [0] * 7,
            forcelimited=mujoco.mjtLimited.mjLIMITED_TRUE,
            forcerange=[-joint.torque_limit, joint.torque_limit],
            ctrllimited=mujoco.mjtLimited.mjLIMITED_TRUE, ctrlrange=list(joint.pos_limit),
        )
    foot_geoms = _foot_geoms(mj, src.feet, path)
    feet = {name for names in foot_geoms.values() for name in names}
    if variant == "fast":
        _strip_to_feet(mj, feet)
    _add_foot_sensors(mj, feet)
    if physics is not None:
        _apply_physics(mj, physics, feet)
    try:
        model = mj.compile()
    except Exception as exc:
        raise ConfigError(f"cannot compile MJCF {path}: {exc}") from exc
    return model, _index(model, spec, src, foot_geoms)


def _foot_geoms(mj: mujoco.MjSpec, feet: tuple[str, ...], path: object) -> dict[str, list[str]]:
    """The geom names of each foot: the geom of that name, or the colliding geoms of the
    body of that name (unnamed ones are named `<foot>_<k>` here)."""
    geoms = {g.name: g for g in mj.geoms if g.name}
    bodies = {b.name: b for b in mj.bodies}
    found: dict[str, list[str]] = {}
    for foot in feet:
        if foot in geoms:
            found[foot] = [foot]
            continue
        if foot not in bodies:
            raise ConfigError(f"{path}: foot {foot!r} is neither a geom nor a body of the "
                              "model")
        colliding = [g for g in bodies[foot].geoms if g.contype or g.conaffinity]
        if not colliding:
            raise ConfigError(f"{path}: foot body {foot!r} has no colliding geom")
        for k, geom in enumerate(colliding):
            geom.name = geom.name or f"{foot}_{k}"
        found[foot] = [g.name for g in colliding]
    return found


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


def _add_foot_sensors(mj: mujoco.MjSpec, feet: set[str]) -> None:
    """A touch sensor on a site slightly larger than each foot geom: contact force, read in
    the sensor data (cheaper than scanning the contact list of every robot every step); and
    the site's world position (a swinging foot's height)."""
    geoms = {g.name: g for g in mj.geoms}
    for name in sorted(feet):
        geom = geoms[name]
        site = geom.parent.add_site(name=f"touch_{name}", pos=geom.pos, quat=geom.quat,
                                    type=geom.type, size=geom.size * 1.2)
        mj.add_sensor(name=f"touch_{name}", type=mujoco.mjtSensor.mjSENS_TOUCH,
                      objtype=mujoco.mjtObj.mjOBJ_SITE, objname=site.name)
        mj.add_sensor(name=f"pos_{name}", type=mujoco.mjtSensor.mjSENS_FRAMEPOS,
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


def _index(model: mujoco.MjModel, spec: RobotSpec, src: ModelSource,
           foot_geoms: dict[str, list[str]]) -> ModelIndex:
    ids = [model.joint(name).id for name in src.joints]
    base = base_qpos = base_dof = None
    base_body = src.base_body
    if base_body is not None:
        base = model.body(base_body).id
        free = [j for j in range(model.njnt) if model.jnt_bodyid[j] == base
                and model.jnt_type[j] == mujoco.mjtJoint.mjJNT_FREE]
        if not free:
            raise ConfigError(f"robot {spec.name!r}: base body {base_body!r} has no free joint")
        base_qpos, base_dof = int(model.jnt_qposadr[free[0]]), int(model.jnt_dofadr[free[0]])
    names = [name for geoms in foot_geoms.values() for name in geoms]
    held = np.array([model.joint(name).id for name in src.held], dtype=int)
    return ModelIndex(
        qpos=model.jnt_qposadr[ids].copy(), dof=model.jnt_dofadr[ids].copy(), base_body=base,
        base_qpos=base_qpos, base_dof=base_dof,
        feet=np.array([model.geom(name).id for name in names], dtype=int),
        touch=np.array([model.sensor_adr[model.sensor(f"touch_{name}").id] for name in names],
                       dtype=int),
        foot_start=np.cumsum([0] + [len(g) for g in foot_geoms.values()])[:-1],
        foot_z=np.array([model.sensor_adr[model.sensor(f"pos_{name}").id] + 2 for name in names],
                        dtype=int),
        foot_radius=np.array([model.geom(name).size[0] if int(model.geom(name).type[0]) in _ROUND
                              else 0.0 for name in names]),
        held_qpos=model.jnt_qposadr[held].copy(), held_dof=model.jnt_dofadr[held].copy(),
    )
