"""LTCCell: exactness against ncps, sparsity, gradients, sequences, resets, errors."""

import pytest
import torch

from velora_robot.bench.ncps_ref import to_ncps
from velora_robot.liquid import LTCCell, NCPWiring


def spot_cell(**kwargs) -> LTCCell:
    return LTCCell(NCPWiring(n_dof=12, neurons_per_dof=2, seed=0), 48, **kwargs)


@pytest.mark.parametrize("npd", [1, 2])
@pytest.mark.parametrize("dt", [1.0, 0.02])
def test_outputs_equal_ncps_within_1e_5_over_100_steps(npd, dt):
    cell = LTCCell(NCPWiring(n_dof=12, neurons_per_dof=npd, seed=1), 48, residual=False)
    with torch.no_grad():  # move the affine maps off their identity init
        for p in (cell.input_w, cell.input_b, cell.output_w, cell.output_b):
            p.add_(0.3 * torch.randn_like(p))
    ref = to_ncps(cell)
    x = torch.randn(3, 100, 48, generator=torch.Generator().manual_seed(0))
    h_ref = torch.zeros(3, cell.n_neurons)
    outs = []
    with torch.no_grad():
        for t in range(100):
            y_t, h_ref = ref(x[:, t], h_ref, elapsed_time=dt)
            outs.append(y_t)
        y, h = cell(x, dt=dt)
    torch.testing.assert_close(y, torch.stack(outs, 1), atol=1e-5, rtol=0)
    torch.testing.assert_close(h, h_ref, atol=1e-5, rtol=0)


def test_only_existing_synapses_are_parameters():
    cell = spot_cell()
    w = cell.wiring
    assert cell.w.shape == cell.sigma.shape == cell.mu.shape == (w.n_synapses,)
    assert cell.sensory_w.shape == (w.n_sensory_synapses,)
    assert all(p.numel() < w.n_neurons**2 / 4 for p in cell.parameters())


def test_default_spot_controller_has_under_10k_trainable_parameters():
    assert spot_cell().n_parameters < 10_000


def test_gradients_reach_every_parameter():
    cell = spot_cell()
    y, h = cell(torch.randn(4, 8, 48))
    (y.square().sum() + h.sum()).backward()
    for name, p in cell.named_parameters():
        assert p.grad is not None and p.grad.abs().sum() > 0, name


def test_same_seed_gives_same_outputs():
    x = torch.randn(2, 5, 48)
    assert torch.equal(spot_cell()(x)[0], spot_cell()(x)[0])
    other = LTCCell(NCPWiring(seed=0), 48, seed=5)
    assert not torch.equal(spot_cell()(x)[0], other(x)[0])


def test_batch_of_one_keeps_its_batch_dimension():
    cell = spot_cell()
    y, h = cell(torch.randn(1, 48))
    assert y.shape == (1, 24) and h.shape == (1, 100)
    y, h = cell(torch.randn(1, 1, 48))
    assert y.shape == (1, 1, 24) and h.shape == (1, 100)


def test_a_sequence_equals_the_same_steps_taken_one_by_one():
    cell = spot_cell()
    x = torch.randn(3, 6, 48)
    y_seq, h_seq = cell(x)
    h = None
    for t in range(6):
        y_t, h = cell(x[:, t], h)
        torch.testing.assert_close(y_seq[:, t], y_t)
    torch.testing.assert_close(h_seq, h)


def test_reset_mask_restarts_a_sample_from_a_zero_state():
    cell = spot_cell()
    x = torch.randn(2, 10, 48)
    resets = torch.zeros(2, 10, dtype=torch.bool)
    resets[0, 4] = True
    y, _ = cell(x, torch.randn(2, 100), resets=resets)
    fresh, _ = cell(x[:1, 4:])
    torch.testing.assert_close(y[:1, 4:], fresh)
    carried, _ = cell(x[1:, 4:])
    assert not torch.allclose(y[1:, 4:], carried, atol=1e-3)  # no reset: state carried over


def test_per_sample_elapsed_time_matches_separate_runs():
    cell = spot_cell()
    x = torch.randn(3, 5, 48)
    dts = torch.tensor([0.5, 1.0, 2.0])
    y, h = cell(x, dt=dts[:, None].expand(3, 5))
    for b in range(3):
        y_b, h_b = cell(x[b:b + 1], dt=float(dts[b]))
        torch.testing.assert_close(y[b:b + 1], y_b)
        torch.testing.assert_close(h[b:b + 1], h_b)
    y1, _ = cell(x[:, 0], dt=dts)
    torch.testing.assert_close(y1, y[:, 0])


def test_residual_head_adds_a_projection_of_the_input_and_can_be_switched_off():
    on, off = spot_cell(), spot_cell(residual=False)
    off.load_state_dict({k: v for k, v in on.state_dict().items() if k != "residual"})
    x = torch.randn(2, 48)
    torch.testing.assert_close(on(x)[0], off(x)[0] + x @ on.residual.t())
    assert off.residual is None and off.n_parameters == on.n_parameters - 24 * 48


def test_joint_action_is_the_difference_of_the_antagonistic_pair():
    cell = spot_cell()
    y = torch.arange(24.0).unsqueeze(0)
    assert torch.equal(cell.joint_actions(y), torch.full((1, 12), -1.0))
    one = LTCCell(NCPWiring(neurons_per_dof=1), 48)
    assert torch.equal(one.joint_actions(y[:, :12]), y[:, :12])


def test_cached_inference_parameters_follow_optimizer_steps():
    cell = spot_cell()
    x = torch.randn(2, 48)
    with torch.no_grad():
        before = cell(x)[0]
    opt = torch.optim.SGD(cell.parameters(), lr=0.5)
    cell(x)[0].sum().backward()
    opt.step()
    with torch.no_grad():
        after = cell(x)[0]
    assert not torch.allclose(before, after)
    torch.testing.assert_close(after, cell(x)[0].detach())


def test_compiled_solver_matches_eager():
    wiring = NCPWiring(n_dof=1, neurons_per_dof=2, n_neurons=8)
    eager = LTCCell(wiring, 4)
    fast = LTCCell(wiring, 4, compiled=True)
    fast.load_state_dict(eager.state_dict())
    x = torch.randn(2, 5, 4)
    torch.testing.assert_close(fast(x)[0], eager(x)[0], atol=1e-6, rtol=1e-5)


@pytest.mark.parametrize("make,message", [
    (lambda: LTCCell(NCPWiring(), 48, ode_unfolds=0), "ode_unfolds must be an integer >= 1"),
    (lambda: LTCCell(NCPWiring(n_inputs=10), 48), "built for 10 inputs, not 48"),
    (lambda: LTCCell(NCPWiring(), 0), "in_features must be an integer >= 1"),
])
def test_bad_construction_arguments_say_what_is_wrong(make, message):
    with pytest.raises(ValueError, match=message):
        make()


@pytest.mark.parametrize("call,message", [
    (lambda c: c(torch.full((1, 48), float("nan"))), "NaN or inf"),
    (lambda c: c(torch.randn(1, 47)), "has 47 features but the cell was built for 48"),
    (lambda c: c(torch.randn(48)), r"must be \(batch, features\)"),
    (lambda c: c(torch.randn(2, 48), torch.zeros(2, 99)), r"hidden state must have shape"),
    (lambda c: c(torch.randn(2, 48), dt=0.0), "dt must be positive"),
    (lambda c: c(torch.randn(2, 3, 48), dt=torch.ones(2)), r"dt must be a float or have shape"),
    (lambda c: c(torch.randn(2, 3, 48), resets=torch.zeros(2, 4)), "resets must have shape"),
])
def test_bad_inputs_say_what_is_wrong(call, message):
    with pytest.raises(ValueError, match=message):
        call(spot_cell())


def test_c_kernel_matches_eager_with_per_sample_dt_and_resets():
    eager = spot_cell()
    fast = spot_cell(compiled=True)
    fast.load_state_dict(eager.state_dict())
    x = torch.randn(3, 40, 48)
    dt = torch.rand(3, 40) + 0.05
    resets = torch.rand(3, 40) < 0.1
    h0 = torch.randn(3, 100) * 0.1
    with torch.no_grad():
        expected = eager(x, h0, dt=dt, resets=resets)
        got = fast(x, h0, dt=dt, resets=resets)
        single = fast(x[:, 0], h0, dt=dt[:, 0])
    torch.testing.assert_close(got[0], expected[0], atol=1e-5, rtol=0)
    torch.testing.assert_close(got[1], expected[1], atol=1e-5, rtol=0)
    torch.testing.assert_close(single[0], eager(x[:, 0], h0, dt=dt[:, 0])[0], atol=1e-5, rtol=0)
    assert torch.equal(h0, h0.clone())  # the caller's state is not written in place


def test_c_kernel_refuses_nan_input_and_follows_parameter_updates():
    cell = spot_cell(compiled=True)
    with torch.no_grad(), pytest.raises(ValueError, match="NaN or inf"):
        cell(torch.full((1, 48), float("inf")))
    x = torch.randn(1, 48)
    with torch.no_grad():
        before = cell(x)[0]
        cell.output_b.add_(1.0)
        torch.testing.assert_close(cell(x)[0], before + 1.0)


def test_kernel_and_wiring_load_without_torch():
    import subprocess
    import sys

    code = ("import sys, numpy as np\n"
            "from velora_robot.liquid import NCPWiring\n"
            "from velora_robot.liquid.kernel import library\n"
            "NCPWiring(n_inputs=4); library()\n"
            "assert 'torch' not in sys.modules, 'torch was imported'\n")
    run = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True)
    assert run.returncode == 0, run.stderr


def test_without_a_c_compiler_compiled_cells_warn_and_use_torch(tmp_path):
    import subprocess
    import sys

    code = ("import warnings, torch\n"
            "from velora_robot.liquid import LTCCell, NCPWiring\n"
            "cell = LTCCell(NCPWiring(n_dof=1, n_neurons=8), 4, compiled=True)\n"
            "ref = LTCCell(NCPWiring(n_dof=1, n_neurons=8), 4)\n"
            "x = torch.randn(2, 4)\n"
            "with warnings.catch_warnings(record=True) as caught, torch.no_grad():\n"
            "    warnings.simplefilter('always')\n"
            "    y = cell(x)[0]\n"
            "assert any('kernel unavailable' in str(w.message) for w in caught), caught\n"
            "torch.testing.assert_close(y, ref(x)[0].detach(), atol=1e-5, rtol=0)\n")
    env = {**__import__("os").environ, "CC": str(tmp_path / "no-such-cc"),
           "XDG_CACHE_HOME": str(tmp_path)}
    run = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, env=env,
                         timeout=300)
    assert run.returncode == 0, run.stderr


def test_return_states_gives_the_state_after_every_step():
    cell = spot_cell()
    x = torch.randn(2, 5, 48)
    y, states = cell(x, return_states=True)
    y_ref, h = cell(x)
    torch.testing.assert_close(y, y_ref)
    assert states.shape == (2, 5, 100)
    torch.testing.assert_close(states[:, -1], h)
    torch.testing.assert_close(states[:, 1], cell(x[:, :2])[1])


def _grads(cell, x, h0, **kwargs):
    """Outputs and the gradients of a loss over outputs, final state and inputs."""
    x, h0 = x.clone().requires_grad_(), h0.clone().requires_grad_()
    cell.zero_grad(set_to_none=True)
    y, h = cell(x, h0, **kwargs)
    weight = torch.randn(y.shape, generator=torch.Generator().manual_seed(1))
    ((y * weight).sum() + h.square().sum()).backward()
    return {"y": y.detach(), "h": h.detach(), "x": x.grad, "h0": h0.grad,
            **{name: p.grad for name, p in cell.named_parameters()}}


@pytest.mark.parametrize("npd", [1, 2])
@pytest.mark.parametrize("residual", [True, False])
def test_fused_backward_equals_autograd_within_1e_5(npd, residual):
    eager = LTCCell(NCPWiring(n_dof=12, neurons_per_dof=npd, seed=2), 48, residual=residual,
                    fused=False)
    with torch.no_grad():  # every parameter away from its init, so every term matters
        for p in eager.parameters():
            p.add_(0.2 * torch.randn(p.shape, generator=torch.Generator().manual_seed(3)))
    fused = LTCCell(NCPWiring(n_dof=12, neurons_per_dof=npd, seed=2), 48, residual=residual)
    fused.load_state_dict(eager.state_dict())
    gen = torch.Generator().manual_seed(0)
    x, h0 = torch.randn(13, 9, 48, generator=gen), 0.3 * torch.randn(13, eager.n_neurons,
                                                                      generator=gen)
    for kwargs in ({}, {"dt": 0.02},
                   {"dt": torch.rand(13, 9, generator=gen) + 0.5,
                    "resets": torch.rand(13, 9, generator=gen) < 0.2}):
        want, got = _grads(eager, x, h0, **kwargs), _grads(fused, x, h0, **kwargs)
        assert want.keys() == got.keys()
        for name, g in want.items():
            scale = max(1.0, float(g.abs().max()))
            torch.testing.assert_close(got[name], g, atol=1e-5 * scale, rtol=1e-5,
                                       msg=lambda m, n=name, k=kwargs: f"{n} {k}: {m}")


def test_fused_forward_without_gradients_is_as_exact_as_eager_over_a_long_sequence():
    eager, fused = spot_cell(fused=False), spot_cell()
    exact = spot_cell(fused=False).double()
    x = torch.randn(40, 200, 48, generator=torch.Generator().manual_seed(0))
    with torch.no_grad():
        want, got, ref = eager(x, dt=0.05), fused(x, dt=0.05), exact(x.double(), dt=0.05)
        states = fused(x[:5, :7], return_states=True)[1]
    torch.testing.assert_close(got[0], want[0], atol=1e-5, rtol=0)
    # Over 200 steps float32 rounding alone moves the inner neurons by ~1e-5 (eager too):
    # the fused state must be as close to the float64 one as the eager state is.
    err_fused = float((got[1].double() - ref[1]).abs().max())
    err_eager = float((want[1].double() - ref[1]).abs().max())
    assert err_fused < max(1.5 * err_eager, 1e-5), (err_fused, err_eager)
    torch.testing.assert_close(states, eager(x[:5, :7], return_states=True)[1].detach(),
                               atol=1e-5, rtol=0)


def test_fused_graphs_alive_at_once_keep_their_own_tapes():
    """A training loop may hold several graphs (actor and critic, two minibatches): a tape is
    reused only once its graph is gone."""
    eager, fused = spot_cell(fused=False), spot_cell()
    xs = [torch.randn(8, 6, 48) for _ in range(3)]
    losses = [fused(x)[0].square().sum() for x in xs]  # three graphs, same tape size
    for loss in reversed(losses):
        loss.backward()
    for x in xs:
        eager(x)[0].square().sum().backward()
    for (name, p), q in zip(fused.named_parameters(), eager.parameters(), strict=True):
        torch.testing.assert_close(p.grad, q.grad, atol=1e-4, rtol=1e-5, msg=name)


def test_fused_refuses_nan_input():
    cell = spot_cell()
    x = torch.randn(2, 3, 48)
    x[1, 2, 5] = float("nan")
    with pytest.raises(ValueError, match="NaN or inf"):
        cell(x)


def test_fused_threads_split_the_batch_exactly_and_deterministically():
    def run(threads):
        torch.set_num_threads(threads)
        cell = spot_cell()
        x = torch.randn(150, 9, 48, generator=torch.Generator().manual_seed(0))
        dt = torch.rand(150, 9, generator=torch.Generator().manual_seed(1)) + 0.5
        y, states = cell(x, dt=dt, return_states=True)
        (y.square().sum() + states[:, -1].square().sum()).backward()
        return y.detach(), states.detach(), [p.grad.clone() for p in cell.parameters()]

    before = torch.get_num_threads()
    try:
        one, two, again = run(1), run(2), run(2)
    finally:
        torch.set_num_threads(before)
    assert torch.equal(one[0], two[0]) and torch.equal(one[1], two[1])  # samples apart
    for g1, g2, g3 in zip(one[2], two[2], again[2], strict=True):
        torch.testing.assert_close(g2, g1, atol=1e-5 * max(1.0, float(g1.abs().max())),
                                   rtol=1e-5)  # the parts' sums, added in order
        assert torch.equal(g2, g3)
