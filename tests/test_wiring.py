"""NCPWiring: structure, determinism, reachability, serialization, errors."""

import json

import numpy as np
import pytest

from velora_robot.liquid import NCPWiring, WiringError


def test_default_spot_wiring_has_100_neurons_and_24_motor_neurons():
    w = NCPWiring(n_dof=12, neurons_per_dof=2, seed=0)
    assert (w.n_neurons, w.n_motor, w.n_command, w.n_inter) == (100, 24, 36, 40)
    assert w.command_per_dof == 3
    assert 0 < w.n_synapses < 0.05 * w.n_neurons**2


def test_same_seed_draws_the_same_wiring_and_another_seed_does_not():
    assert NCPWiring(seed=3, n_inputs=48) == NCPWiring(seed=3, n_inputs=48)
    assert NCPWiring(seed=3, n_inputs=48) != NCPWiring(seed=4, n_inputs=48)


def test_wiring_does_not_touch_the_global_rng():
    np.random.seed(123)
    expected = np.random.rand()
    np.random.seed(123)
    NCPWiring(n_inputs=48)
    assert np.random.rand() == expected


def test_neuron_graph_does_not_depend_on_the_number_of_inputs():
    a, b = NCPWiring(n_inputs=10), NCPWiring(n_inputs=48)
    assert np.array_equal(a.synapses, b.synapses)


@pytest.mark.parametrize("n_dof,npd,n_neurons", [(12, 2, None), (12, 1, None), (1, 1, 8),
                                                  (1, 2, 8), (19, 1, 100), (3, 2, 12)])
@pytest.mark.parametrize("seed", range(5))
def test_every_neuron_is_reachable_from_inputs_and_reaches_a_motor(n_dof, npd, n_neurons, seed):
    w = NCPWiring(n_dof=n_dof, neurons_per_dof=npd, seed=seed, n_neurons=n_neurons, n_inputs=7)
    everyone = set(range(w.n_neurons))
    assert w._reachable_from_inputs() == everyone
    assert w._reaching_motors() == everyone


def test_each_input_fans_out_to_distinct_inter_neurons():
    w = NCPWiring(n_inputs=48, sensory_fanout=4)
    for i in range(48):
        dst = w.sensory_synapses[w.sensory_synapses[:, 0] == i, 1]
        assert len(dst) >= 4 and len(set(dst)) == len(dst)
        assert all(w.role(d) == "inter" for d in dst)


def test_every_synapse_has_a_fixed_polarity_of_plus_or_minus_one():
    w = NCPWiring(n_inputs=48)
    assert set(np.unique(w.synapses[:, 2])) == {-1, 1}
    assert set(np.unique(w.sensory_synapses[:, 2])) == {-1, 1}


def test_each_joint_owns_its_motor_pair_and_commands_drive_it_antagonistically():
    w = NCPWiring(n_dof=12, neurons_per_dof=2)
    adj = w.adjacency()
    for j in range(12):
        pos, neg = w.motor_neurons(j)
        drivers = np.nonzero(adj[:, pos])[0]
        assert set(drivers) == set(w.command_neurons(j))
        assert np.array_equal(adj[drivers, pos], -adj[drivers, neg])


def test_joints_coordinate_through_sparse_cross_joint_command_synapses():
    w = NCPWiring(n_dof=12)
    counts = w.synapse_counts()
    cross = sum(counts["command->command (cross joint)"].values())
    assert 0 < cross <= w.n_command * w.cross_joint_fanout


def test_one_neuron_mode_gives_each_joint_one_motor_neuron():
    w = NCPWiring(n_dof=12, neurons_per_dof=1)
    assert w.n_motor == 12
    assert [list(w.motor_neurons(j)) for j in range(3)] == [[0], [1], [2]]


def test_json_round_trip_is_exact(tmp_path):
    w = NCPWiring(n_dof=4, neurons_per_dof=2, seed=7, n_inputs=20, joint_names=list("abcd"))
    path = tmp_path / "w.json"
    w.to_json(path)
    back = NCPWiring.from_json(path)
    assert back == w
    assert back.to_json() == w.to_json()
    assert NCPWiring.from_json(w.to_json()) == w


def test_loaded_wiring_keeps_stored_synapses_even_if_drawing_would_differ():
    data = NCPWiring(n_inputs=48).to_dict()
    src, dst, polarity = data["synapses"][-1]
    data["synapses"][-1] = [src, dst, -polarity]
    assert NCPWiring.from_dict(data).synapses.tolist() == data["synapses"]


def test_describe_lists_neurons_by_role_and_joint_and_synapse_counts():
    names = [f"leg{j}" for j in range(12)]
    text = NCPWiring(n_inputs=48, joint_names=names).describe()
    assert "motor 24, command 36 (3 per joint), inter 40" in text
    for name in names:
        assert name in text
    for pathway in ("sensory->inter", "inter->command", "command->motor"):
        assert pathway in text


def test_plot_writes_a_png(tmp_path):
    path = NCPWiring(n_dof=2, n_inputs=6).plot(tmp_path / "wiring.png")
    assert path.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"


@pytest.mark.parametrize("kwargs,message", [
    ({"neurons_per_dof": 3}, "neurons_per_dof must be 1"),
    ({"n_dof": 0}, "n_dof must be an integer >= 1"),
    ({"n_neurons": 20}, "n_neurons=20 is too few"),
    ({"seed": -1}, "seed must be an integer >= 0"),
    ({"n_dof": 2, "joint_names": ["a"]}, "joint_names must be 2"),
])
def test_bad_arguments_say_what_is_wrong(kwargs, message):
    with pytest.raises(WiringError, match=message):
        NCPWiring(**kwargs)


def test_a_wiring_built_for_other_inputs_is_refused():
    with pytest.raises(WiringError, match="built for 48 inputs, not 10"):
        NCPWiring(n_inputs=48).with_inputs(10)


@pytest.mark.parametrize("edit,message", [
    (lambda d: d.pop("synapses"), "missing field"),
    (lambda d: d.update(format="other"), "field 'format'"),
    (lambda d: d["synapses"].append([0, 5, 1]), "motor neuron 0 -> motor neuron 5"),
    (lambda d: d["synapses"].__setitem__(0, [*d["synapses"][0][:2], 2]), "polarity"),
    (lambda d: d["sensory_synapses"].append([99, 60, 1]), "input index is outside"),
])
def test_a_corrupt_wiring_file_names_the_field(tmp_path, edit, message):
    data = NCPWiring(n_inputs=48).to_dict()
    edit(data)
    path = tmp_path / "w.json"
    path.write_text(json.dumps(data))
    with pytest.raises(WiringError, match=message):
        NCPWiring.from_json(path)


def test_an_unreadable_wiring_file_is_reported(tmp_path):
    with pytest.raises(WiringError, match="cannot read wiring file"):
        NCPWiring.from_json(tmp_path / "missing.json")
