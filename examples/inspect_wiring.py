"""Inspect a controller's wiring from its model card: neurons by role and joint, synapses
by polarity, what feeds each motor neuron, and the diagram as a PNG."""

import json
from pathlib import Path

import numpy as np

from velora_robot.liquid import NCPWiring

ROOT = Path(__file__).resolve().parents[1]
card = json.loads((ROOT / "models" / "spot_walk.onnx.json").read_text())
wiring = NCPWiring.from_dict(card["network"]["wiring"])
print(wiring.describe())
polarity = wiring.adjacency()  # (neurons, neurons): +1 excitatory, -1 inhibitory, 0 none
for joint, name in enumerate(card["robot"]["joints"][:3]):
    motor = wiring.motor_neurons(joint)[0]
    feeds = np.flatnonzero(polarity[:, motor])
    roles = [f"{wiring.role(n)} {n} ({'+' if polarity[n, motor] > 0 else '-'})" for n in feeds]
    print(f"{name['name']}: motor neuron {motor} <- {', '.join(roles)}")
print(f"diagram: {wiring.plot(Path('out') / 'spot_wiring.png')}")
