import numpy as np
import pytest

from paper_lib.tasks.pendulum import (PendulumTask, accelerations, bob_positions, energy,
                                      initial_states, max_angular_velocity,
                                      normal_mode_frequencies, potential, simulate,
                                      states_from_channels)

TASK = PendulumTask()
V_MIN = TASK.v_min  # −29.43 J; energies are compared relative to E − V_min (E itself can be 0)


def clean(n=64, seed=0, task=TASK):
    g = np.random.default_rng(seed)
    q = task.sample_quantity(n, g)
    return q, task.generate(q, g)


def test_defaults_and_potential_range():
    assert TASK.T % 4 == 0 and TASK.C == 6 and TASK.lo > V_MIN
    assert potential(0.0, 0.0) == pytest.approx(-29.43)
    assert potential(np.pi, np.pi) == pytest.approx(29.43)


def test_equations_of_motion_follow_from_the_lagrangian():
    """Compare with a direct numerical Euler–Lagrange evaluation, d/dt ∂L/∂ω = ∂L/∂θ, using
    finite differences of L for one random state with unequal parameters."""
    p = dict(m1=1.3, m2=0.7, l1=0.9, l2=1.4, g=9.81)
    s = np.array([0.7, -2.1, 1.3, -0.4])
    a = np.array(accelerations(*s, **p))

    def L(th1, th2, w1, w2):
        return (energy(th1, th2, w1, w2, **p) - 2 * potential(th1, th2, **p))  # K − V

    h = 1e-5
    e = np.eye(4)

    def dL(x, i):
        return (L(*(x + h * e[i])) - L(*(x - h * e[i]))) / (2 * h)

    # d/dt ∂L/∂ω_i = Σ_j ∂²L/∂ω_i∂θ_j ω_j + Σ_j ∂²L/∂ω_i∂ω_j α_j
    lhs = []
    for i in (2, 3):
        mixed = [(dL(s + h * e[j], i) - dL(s - h * e[j], i)) / (2 * h) for j in range(4)]
        lhs.append(mixed[0] * s[2] + mixed[1] * s[3] + mixed[2] * a[0] + mixed[3] * a[1])
    rhs = [dL(s, 0), dL(s, 1)]
    np.testing.assert_allclose(lhs, rhs, rtol=1e-5, atol=1e-5)


@pytest.mark.parametrize("E", [0.0, 5.0, 10.0, 25.0])
def test_energy_is_conserved_on_chaotic_trajectories(E):
    s0 = initial_states(np.full(3, E), np.random.default_rng(3))
    S = simulate(s0, 128, 0.1)  # 12.8 s, twice the task window
    drift = np.abs(energy(*np.moveaxis(S, -1, 0)) - E).max()
    assert drift < 1e-6 * (E - V_MIN)
    assert np.abs(S[..., 1]).max() > np.pi or E < 5  # really chaotic: the outer arm flips


def test_stacking_does_not_change_a_trajectory():
    """A trajectory integrated alone equals the same one inside a stacked chunk (to integration
    accuracy amplified by chaos over 6.4 s); catches a wrong stacking layout."""
    s0 = initial_states(np.linspace(-25, 10, 40), np.random.default_rng(4))
    together = simulate(s0, 64, 0.1)
    for i in (0, 17, 39):
        alone = simulate(s0[i:i + 1], 64, 0.1)[0]
        tol = 1e-7 if i == 0 else 1e-4
        np.testing.assert_allclose(together[i], alone, atol=tol)


def test_initial_states_have_the_requested_energy():
    g = np.random.default_rng(5)
    E = np.concatenate([g.uniform(-29.4, 35.0, 300), [V_MIN + 1e-3, 0.0, 29.43]])
    s = initial_states(E, g)
    assert s.shape == (len(E), 4)
    err = np.abs(energy(*s.T) - E)
    assert (err <= 1e-9 * (E - V_MIN)).all()
    assert (potential(s[:, 0], s[:, 1]) < E).all()
    assert (np.abs(s[:, :2]) <= np.pi).all()
    with pytest.raises(ValueError, match="ground state"):
        initial_states(np.array([V_MIN]), g)


def test_initial_states_are_deterministic_and_random():
    a = initial_states(np.full(5, -5.0), np.random.default_rng(6))
    b = initial_states(np.full(5, -5.0), np.random.default_rng(6))
    np.testing.assert_array_equal(a, b)
    assert len(np.unique(a[:, 0])) == 5


def test_small_angle_limit_matches_the_normal_modes():
    w = normal_mode_frequencies()
    np.testing.assert_allclose(w ** 2, 9.81 * np.array([2 - np.sqrt(2), 2 + np.sqrt(2)]),
                               rtol=1e-12)
    # each mode from rest at 1 mrad: θ2 = ±√2 θ1 and θ1(t) = A cos(ω t)
    A, t = 1e-3, np.arange(64) * 0.1
    for sign, omega in ((1, w[0]), (-1, w[1])):
        S = simulate(np.array([[A, sign * np.sqrt(2) * A, 0.0, 0.0]]), 64, 0.1)[0]
        np.testing.assert_allclose(S[:, 0] / A, np.cos(omega * t), atol=1e-4)
        np.testing.assert_allclose(S[:, 1] / S[0, 1], np.cos(omega * t), atol=1e-4)


def test_normal_modes_for_unequal_parameters():
    m1, m2, l1, l2, g = 2.0, 0.5, 1.5, 0.6, 9.81
    a = (m1 + m2) * (l1 + l2)
    root = np.sqrt((m1 + m2) * ((m1 + m2) * (l1 + l2) ** 2 - 4 * m1 * l1 * l2))
    want = g / (2 * m1 * l1 * l2) * np.array([a - root, a + root])
    np.testing.assert_allclose(normal_mode_frequencies(m1, m2, l1, l2, g) ** 2, want, rtol=1e-12)


def test_generate_shape_dtype_channels_and_determinism():
    q, X = clean(n=16)
    assert X.shape == (16, TASK.T, 6) and X.dtype == np.float32
    _, Y = clean(n=16)
    np.testing.assert_array_equal(X, Y)
    np.testing.assert_allclose(X[..., 0] ** 2 + X[..., 1] ** 2, 1, atol=1e-6)
    np.testing.assert_allclose(X[..., 2] ** 2 + X[..., 3] ** 2, 1, atol=1e-6)
    # ω channels are the derivative of the angles: compare with central differences on a fine grid
    fine = PendulumTask(T=64, dt=0.001)
    Z = fine.generate(np.array([-20.0]), np.random.default_rng(0))[0].astype(np.float64)
    th = np.unwrap(states_from_channels(Z[None])[0, :, :2], axis=0)
    np.testing.assert_allclose((th[2:] - th[:-2]) / 0.002, Z[1:-1, 4:], atol=1e-3)


def test_measure_inverts_the_channel_map():
    q, X = clean(n=64)
    # float32 storage rounds each channel by ~6e-8 relative; a frame's energy then errs by
    # ≲ 2e-7 of E − V_min (measured max 1.5e-7 over 4,096 trajectories) and the mean over 64
    # frames by ≲ 2e-8; 1e-6 leaves a margin while still catching any wrong term in E.
    err = np.abs(TASK.measure(X) - q) / (q - V_MIN)
    assert err.max() < 1e-6
    assert (np.abs(TASK.frame_energies(X) - q[:, None]) / (q - V_MIN)[:, None]).max() < 1e-6
    # in float64 the channel map is inverted exactly
    S = initial_states(q[:8], np.random.default_rng(1))
    X64 = np.stack([np.sin(S[:, 0]), np.cos(S[:, 0]), np.sin(S[:, 1]), np.cos(S[:, 1]),
                    S[:, 2], S[:, 3]], -1)[:, None, :]
    np.testing.assert_allclose(states_from_channels(X64)[:, 0], S, atol=1e-14)
    np.testing.assert_allclose(energy(*states_from_channels(X64)[:, 0].T), q[:8], atol=1e-12)
    # sin/cos pairs off the unit circle (as a model may produce) give the same angles
    W = X.copy()
    W[..., :2] *= 1.05
    W[..., 2:4] *= 0.97
    np.testing.assert_allclose(TASK.measure(W), TASK.measure(X), atol=1e-5)
    assert TASK.measure(X[:5]).shape == (5,)
    np.testing.assert_allclose(TASK.measure(X[3:4]), TASK.measure(X)[3:4], rtol=1e-12)


def test_model_normalisation_is_per_channel_and_round_trips():
    q, X = clean(n=64)
    Z = TASK.to_model(X)
    assert Z.dtype == np.float32 and np.abs(Z).max() <= 1.0
    assert np.abs(Z[..., 4:]).max() > 0.3  # ω channels are O(1), not tiny
    np.testing.assert_allclose(TASK.from_model(Z), X, rtol=1e-6, atol=1e-6)
    np.testing.assert_allclose(Z[..., :4], X[..., :4])
    # the scale is the bound at E = hi from the parameters, attained at θ = 0 along M⁻¹e_i:
    # ω ∝ (1, −1) for ω1 and (−1, 2) for ω2 at the defaults
    w1, w2 = max_angular_velocity(TASK.hi)
    K = TASK.hi - V_MIN
    assert (w1, w2) == pytest.approx((np.sqrt(2 * K), 2 * np.sqrt(K)))
    assert energy(0.0, 0.0, w1, -w1) == pytest.approx(TASK.hi)
    assert energy(0.0, 0.0, -w2 / 2, w2) == pytest.approx(TASK.hi)
    S = initial_states(np.full(4000, TASK.hi), np.random.default_rng(3))
    assert (np.abs(S[:, 2]) <= w1).all() and (np.abs(S[:, 3]) <= w2).all()
    assert np.abs(S[:, 3]).max() > 0.8 * w2
    assert PendulumTask(hi=20.0).channel_scale[4] > TASK.channel_scale[4]
    assert TASK.from_model(np.zeros(1)).shape == (6,)  # broadcasts as the samplers use it


def test_bob_positions():
    X = np.array([[[0, 1, 0, 1, 0, 0], [1, 0, -1, 0, 0, 0]]], np.float32)
    np.testing.assert_allclose(bob_positions(X)[0], [[0, -1, 0, -2], [1, 0, 0, 0]], atol=1e-7)
    _, Y = clean(n=4)
    P = bob_positions(Y)
    np.testing.assert_allclose(np.hypot(P[..., 0], P[..., 1]), 1, atol=1e-6)
    np.testing.assert_allclose(np.hypot(P[..., 2] - P[..., 0], P[..., 3] - P[..., 1]), 1,
                               atol=1e-6)


def test_plausibility_accepts_clean_and_time_reversed_motion():
    q, X = clean(n=128)
    assert TASK.is_plausible(X).all()
    R = X[:, ::-1].copy()
    R[..., 4:] *= -1  # the dynamics are time-reversible
    assert TASK.is_plausible(R).all()


def channels(S):
    """States (n, T, 4) -> channels (n, T, 6) float32."""
    return np.stack([np.sin(S[..., 0]), np.cos(S[..., 0]), np.sin(S[..., 1]), np.cos(S[..., 1]),
                     S[..., 2], S[..., 3]], -1).astype(np.float32)


def relaxed(tol):
    """The task with one plausibility check switched off (its tolerance infinite)."""
    return type("Relaxed", (PendulumTask,), {tol: np.inf})()


def test_plausibility_rejects_each_kind_of_violation():
    q, X = clean(n=32)
    noise = np.random.default_rng(2).normal(0.5, 0.5, X.shape).astype(np.float32)
    assert not TASK.is_plausible(noise).any()
    nan = X.copy()
    nan[:, 5, 0] = np.nan
    assert not TASK.is_plausible(nan).any()
    # one violation per check, each caught by that check alone
    off_circle = X.copy()
    off_circle[:, :, 2:4] *= 1.1  # angles and everything else unchanged
    # real motions at E = 35 J > hi from θ = 0, along the ω1- and the ω2-maximising directions
    w1, w2 = np.sqrt(2 * (35.0 - V_MIN)), 2 * np.sqrt(35.0 - V_MIN)
    too_fast = channels(simulate(np.array([[0, 0, w1, -w1], [0, 0, -w2 / 2, w2]]), 64, 0.1))
    _, wrong_g = clean(n=32, task=PendulumTask(g=14.0))  # smooth, but E(g = 9.81) not conserved
    reversed_only = X[:, ::-1].copy()  # ω not negated: angle increments contradict ω
    cases = {"norm_tol": off_circle, "omega_margin": too_fast, "energy_tol": wrong_g,
             "step_tol": reversed_only}
    for tol, B in cases.items():
        assert not TASK.is_plausible(B).any(), tol
        assert relaxed(tol).is_plausible(B).all(), tol
    shuffled = X[:, np.random.default_rng(0).permutation(TASK.T)]
    assert not TASK.is_plausible(shuffled).any()


def test_checks_break_down_is_plausible():
    t = PendulumTask(T=16)
    X = t.generate(np.array([-20.0, 0.0, 5.0]), np.random.default_rng(3))
    bad = X.copy()
    bad[1, :, :2] *= 1.3                        # inner sin/cos pair off the unit circle
    c = t.checks(bad)
    assert set(c) == {"finite", "unit_circle", "omega_bounded", "energy_conserved", "kinematics"}
    assert c["unit_circle"].tolist() == [True, False, True]
    np.testing.assert_array_equal(t.is_plausible(bad), np.logical_and.reduce(list(c.values())))


def test_projection_leaves_clean_motion_and_its_energy_alone():
    q, X = clean(n=64)
    Y = TASK.project(X)
    assert Y.dtype == np.float64 and Y.shape == X.shape
    np.testing.assert_allclose(Y, X, rtol=1e-5, atol=1e-5)
    np.testing.assert_allclose(TASK.measure(Y), q, atol=1e-4)
    assert TASK.is_plausible(Y).all()


def test_projection_restores_both_constraints_and_keeps_the_mean_energy():
    """Off the unit circle and with per-frame energy noise, the projection puts the pairs back on
    the circle and every frame at the motion's mean energy (measured after the circle step)."""
    q, X = clean(n=32, seed=4)
    g = np.random.default_rng(5)
    B = X.copy()
    B[..., :4] *= g.uniform(0.8, 1.2, B[..., :4].shape).astype(np.float32)
    B[..., 4:] *= g.uniform(0.9, 1.1, B[..., 4:].shape).astype(np.float32)
    c = TASK.checks(B)
    assert not c["unit_circle"].any() and not c["energy_conserved"].all()
    Y = TASK.project(B)
    c = TASK.checks(Y)
    assert c["unit_circle"].all() and c["energy_conserved"].all()
    circle = TASK.project(B, energy=False)
    np.testing.assert_allclose(circle[..., 4:], B[..., 4:])
    assert TASK.checks(circle)["unit_circle"].all()
    mean = np.broadcast_to(TASK.measure(circle)[:, None], (len(B), TASK.T))
    S = states_from_channels(circle)
    reachable = mean >= potential(S[..., 0], S[..., 1])   # else the frame comes to rest
    assert reachable.mean() > 0.9
    np.testing.assert_allclose(TASK.frame_energies(Y)[reachable], mean[reachable], atol=1e-3)
    assert (Y[~reachable][:, 4:] == 0).all()


def test_projection_of_what_cannot_be_projected_is_nan():
    q, X = clean(n=3)
    B = X.copy()
    B[0, 5, 4] = np.nan          # a non-finite value
    B[1, :, 0:2] = 0             # a sin/cos pair with no direction
    m = TASK.measure(TASK.project(B))
    assert np.isnan(m[:2]).all() and np.isfinite(m[2])
    with pytest.raises(ValueError, match="expected trajectories of shape"):
        TASK.project(X[:, :, :4])
