"""Tests of paper_lib.representation: every φ round-trips, the quantity is unchanged."""
from __future__ import annotations

import numpy as np
import pytest

import paper_lib
from paper_lib import representation as rep
from paper_lib.tasks import get_task


@pytest.mark.parametrize("task,name", [(t, n) for t, c in rep.REPRESENTATIONS.items()
                                       for n in c])
def test_round_trip_keeps_trajectories_and_quantity(task, name):
    base = get_task(task)
    data = paper_lib.make_dataset(base, 64, seed=0)
    t = rep.represent(base, name)
    d = rep.represent_dataset(data, t)
    Z = d.X
    assert Z.shape == (64, base.T, t.C) and np.isfinite(Z).all()
    assert np.abs(Z).max() < 20            # of order one: the model needs no normalisation
    back = t.to_task(Z) if isinstance(t, rep.Represented) else Z
    np.testing.assert_allclose(back, data.X, atol=1e-4 * max(1.0, np.abs(data.X).max()))
    q_base, q_rep = base.measure(data.X), t.measure(Z)
    np.testing.assert_allclose(q_rep, q_base, rtol=1e-3, atol=1e-3 * np.nanstd(q_base))
    assert (t.is_plausible(Z) == base.is_plausible(data.X)).mean() > 0.95
    assert t.name == base.name and t.quantity == base.quantity
    np.testing.assert_array_equal(d.q, data.q)
    if name == rep.native(task):
        assert t is base or t == base
        assert d is data
    else:
        assert d.spec["representation"] == name


def test_unknown_names_are_one_clear_error():
    with pytest.raises(ValueError, match="valid: values, increments, phasor"):
        rep.represent("sine", "fourier")
    with pytest.raises(ValueError, match="tasks with representations"):
        rep.native("nonsense")


def test_local_error_maps_back_differently():
    """The point of a representation: an error of the same size in φ moves x differently."""
    base = get_task("sine")
    data = paper_lib.make_dataset(base, 32, seed=0)
    rng = np.random.default_rng(0)
    moves = {}
    for name in ("values", "increments"):
        t = rep.represent(base, name)
        Z = rep.represent_dataset(data, t).X
        noise = 0.01 * rng.standard_normal(Z.shape).astype(np.float32)
        noisy = t.to_task(Z + noise) if isinstance(t, rep.Represented) else Z + noise
        moves[name] = float(np.abs(noisy - data.X).mean())
    assert moves["increments"] > 2 * moves["values"]   # increments accumulate along time


def test_steps_carry_the_travel_distance_linearly():
    """cone in ``steps``: the travel distance is the sum of the step-length channel over the
    gain, so an error on a length moves q by the error itself and one on a heading not at all."""
    base = get_task("cone")
    data = paper_lib.make_dataset(base, 32, seed=0)
    t = rep.represent(base, "steps")
    Z = rep.represent_dataset(data, t).X.astype(np.float64)
    gain = 10.0
    np.testing.assert_allclose(Z[:, 1:, 0].sum(1) / gain, data.q, rtol=1e-4)
    rng = np.random.default_rng(0)
    turned = Z.copy()
    turned[:, 1:, 1] += 0.05 * rng.standard_normal(turned[:, 1:, 1].shape)
    np.testing.assert_allclose(t.measure(turned), data.q, rtol=1e-4)
    longer = Z.copy()
    longer[:, 1:, 0] += 0.01
    np.testing.assert_allclose(t.measure(longer) - data.q, 0.01 * (base.T - 1) / gain, rtol=1e-3)


def test_phase_of_a_whole_number_of_cycles_is_exact():
    """sine in ``phase``: with whole cycles in the window the analytic signal is exact, so the
    amplitude is 1 at every step and the phase turns f / T cycles per step; x = A cos(2πψ)."""
    base = get_task("sine")
    X = base.generate(np.array([2.0, 3.0]), np.random.default_rng(0))
    t = rep.represent(base, "phase")
    W = t.from_task(X).astype(np.float64)
    np.testing.assert_allclose(W[..., 0], 1.0, atol=1e-5)
    turn = np.diff(W[..., 1], axis=1)
    np.testing.assert_allclose(turn, np.broadcast_to([[2 / base.T], [3 / base.T]], turn.shape),
                               atol=1e-5)
    np.testing.assert_allclose(t.measure(W.astype(np.float32)), [2.0, 3.0], atol=0.01)
