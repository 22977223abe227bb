"""The ncps reference LTC cell with exactly our wiring and parameters (test/bench oracle)."""

from __future__ import annotations

import torch

from velora_robot.liquid import LTCCell


def ncps_available() -> bool:
    """True when the optional `ncps` package (the `dev` extra) is installed."""
    try:
        import ncps  # noqa: F401
    except ImportError:
        return False
    return True


def to_ncps(cell: LTCCell) -> torch.nn.Module:
    """An `ncps.torch.LTCCell` computing what `cell` computes (residual head excluded).

    ncps stores dense (N, N) parameters under a mask; we scatter our per-synapse values into
    the masked positions. Its softplus positivity (implicit_param_constraints=True) matches
    ours, so the raw parameters carry over unchanged.
    """
    from ncps.torch import LTCCell as NcpsLTCCell
    from ncps.wirings import Wiring

    w = cell.wiring
    ref_wiring = Wiring(w.n_neurons)
    ref_wiring.build(cell.in_features)
    ref_wiring.set_output_dim(w.n_motor)
    for s, d, p in w.synapses.tolist():
        ref_wiring.add_synapse(s, d, p)
    for s, d, p in w.sensory_synapses.tolist():
        ref_wiring.add_sensory_synapse(s, d, p)
    ref = NcpsLTCCell(ref_wiring, cell.in_features, ode_unfolds=cell.ode_unfolds,
                      epsilon=cell.epsilon, implicit_param_constraints=True)
    params = ref._params
    with torch.no_grad():
        for name in ("gleak", "vleak", "cm", "input_w", "input_b", "output_w", "output_b"):
            params[name].copy_(getattr(cell, name))
        for prefix, edges in (("", w.synapses), ("sensory_", w.sensory_synapses)):
            src, dst = torch.from_numpy(edges[:, 0]), torch.from_numpy(edges[:, 1])
            for name in ("w", "sigma", "mu"):
                params[prefix + name].zero_()
                params[prefix + name][src, dst] = getattr(cell, prefix + name)
            params[prefix + "erev"].zero_()
            params[prefix + "erev"][src, dst] = getattr(cell, prefix + "erev")
    return ref
