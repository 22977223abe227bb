"""Record an environment to an animated GIF (Pillow; no ffmpeg needed)."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import gymnasium as gym
import numpy as np


def record(env: gym.Env, path: str | Path, seconds: float, seed: int = 0,
           policy: Callable[[np.ndarray], np.ndarray] | None = None, fps: int = 10,
           on_frame: Callable[[int, int], None] | None = None) -> Path:
    """Run `policy` (zero actions by default) for `seconds` in an env made with
    render_mode="rgb_array" and write the frames, `fps` per second, to `path`;
    `on_frame(done, total)` after each frame (software rendering takes ~0.3 s a frame)."""
    from PIL import Image

    if env.render_mode != "rgb_array":
        raise ValueError("record() needs an env made with render_mode='rgb_array'")
    obs, _ = env.reset(seed=seed)
    control_hz = env.metadata["render_fps"]
    every = max(1, round(control_hz / fps))
    frames = []
    steps = round(seconds * control_hz)
    total = -(-steps // every)
    for step in range(steps):
        action = np.zeros(env.action_space.shape) if policy is None else policy(obs)
        obs, _, terminated, truncated, _ = env.step(action)
        if step % every == 0:
            frames.append(Image.fromarray(env.render()))
            if on_frame is not None:
                on_frame(len(frames), total)
        if terminated or truncated:
            break
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    frames[0].save(path, save_all=True, append_images=frames[1:], loop=0,
                   duration=round(1000 * every / control_hz))
    return path
