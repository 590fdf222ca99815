import numpy as np
import pytest

from paper_lib import Bins, make_dataset
from paper_lib.metrics import histogram
from paper_lib.tasks import maze as M
from paper_lib.tasks.maze import MazeTask, crosses_wall, physics_step, shortest_path, simulate

LAYOUTS = ("umaze", "medium", "large")


def overlaps_wall(P, name, tol=1e-9):
    """Whether the ball's square at positions P (..., 2) openly overlaps a wall cell."""
    W = np.argwhere(M.layout_grid(name))
    P = np.asarray(P, float).reshape(-1, 2)
    d = np.abs(P[:, None, :] - W[None, :, :])
    return (d < 0.5 + M.BODY_RADIUS - tol).all(-1).any(-1)


def test_unknown_layout_lists_valid_ones():
    for make in (lambda: MazeTask(layout="tiny"), lambda: M.layout_grid("tiny")):
        with pytest.raises(ValueError, match="umaze, medium, large"):
            make()


def test_layouts_and_shortest_paths():
    shapes = {"umaze": (5, 5), "medium": (8, 8), "large": (9, 12)}
    for name in LAYOUTS:
        g = M.layout_grid(name)
        assert g.shape == shapes[name] and g.dtype == bool
        assert g[0].all() and g[-1].all() and g[:, 0].all() and g[:, -1].all()
        assert len(M.wall_cells(name)) == g.sum()
        np.testing.assert_allclose(M.wall_cells(name)[:, :2] + 0.5, np.argwhere(g))
    assert len(M.free_cells("umaze")) == 7 and len(M.free_cells("medium")) == 26
    p = shortest_path("umaze", (1, 1), (3, 1))      # around the U: 6 moves
    assert p.tolist() == [[1, 1], [1, 2], [1, 3], [2, 3], [3, 3], [3, 2], [3, 1]]
    p = shortest_path("large", (1, 1), (7, 9))
    g = M.layout_grid("large")
    assert not g[p[:, 0], p[:, 1]].any() and np.all(np.abs(np.diff(p, axis=0)).sum(1) == 1)
    with pytest.raises(ValueError):
        shortest_path("umaze", (2, 1), (1, 1))


@pytest.mark.parametrize("name", LAYOUTS)
def test_controller_succeeds_within_the_horizon(name):
    t = MazeTask(layout=name)
    r = t.rollouts(300, np.random.default_rng(0))
    assert r["success"].mean() >= 0.99
    ok = r["success"]
    assert r["plausible"][ok].all()                          # no recorded plan crosses a wall
    np.testing.assert_array_equal(r["X"][ok, -1], r["goal"][ok].astype(np.float32))
    np.testing.assert_allclose(r["X"][:, 0], r["start"], atol=1e-6)


@pytest.mark.parametrize("name", ("umaze", "medium"))
def test_ball_never_enters_a_wall_at_full_resolution(name):
    g = np.random.default_rng(1)
    start, goal, _, _ = M.sample_episodes(name, 100, g)
    out = simulate(name, start, goal, g, n_frames=400, frame_interval=1)
    assert out["success"].all()
    assert not overlaps_wall(out["frames"], name).any()
    assert not crosses_wall(out["frames"], name).any()
    assert overlaps_wall(np.array([[2.0, 1.45]]), name if name == "umaze" else "umaze").all()


def test_no_tunnelling_at_the_velocity_bound():
    walls = M.layout_grid("umaze")
    # balls in free cells beside walls, at the velocity bound, pushed into the walls at full force
    pos0 = np.array([[1.0, 1.0], [1.0, 1.0], [3.0, 2.0], [1.0, 3.0], [3.0, 1.0], [3.0, 1.0]])
    push = np.array([[-1.0, 0.0], [1.0, 0.0], [-1.0, 0.0], [-1.0, 1.0], [0.0, -1.0], [1.0, 1.0]])
    pos, vel = pos0.copy(), M.V_MAX * push
    free_pos, free_vel = pos0.copy(), M.V_MAX * push
    no_walls = np.zeros_like(walls)
    entered = np.zeros(len(pos0), bool)
    for _ in range(300):
        physics_step(pos, vel, push, walls)
        physics_step(free_pos, free_vel, push, no_walls)
        assert not overlaps_wall(pos, "umaze").any()
        entered |= overlaps_wall(free_pos, "umaze")
        assert np.all(np.abs(vel) <= M.V_MAX + M.DT * M.GEAR / M.MASS + 1e-12)
    assert entered.all()                             # without the walls they would have gone in
    # each ball rests against the wall it was pushed into, one radius from its face
    r = M.BODY_RADIUS
    expect = np.array([[0.5 + r, 1.0], [1.5 - r, 1.0], [2.5 + r, 2.0], [0.5 + r, 3.5 - r],
                       [3.0, 0.5 + r], [3.5 - r, 3.5 - r]])
    np.testing.assert_allclose(pos, expect, atol=1e-9)


def test_curated_dataset_is_flat_exact_and_deterministic():
    t = MazeTask(layout="umaze", T=32)
    X, q = t.build(300, np.random.default_rng(0))
    assert X.shape == (300, 32, 2) and X.dtype == np.float32 and q.dtype == np.float64
    np.testing.assert_array_equal(t.measure(X), q)
    counts = np.bincount(t.bins.index(q), minlength=t.n_bins + 2)
    assert counts[0] == counts[-1] == 0 and np.all(counts[1:-1] == 30)
    assert t.is_plausible(X).all()
    X2, q2 = t.build(300, np.random.default_rng(0))
    assert np.array_equal(X, X2) and np.array_equal(q, q2)
    # a size that is not a multiple of the bins: one extra in distinct bins
    X3, q3 = t.build(307, np.random.default_rng(1))
    c = np.bincount(t.bins.index(q3), minlength=t.n_bins + 2)[1:-1]
    assert len(q3) == 307 and set(c) == {30, 31} and (c == 31).sum() == 7
    # the raw pool is far from flat: curation is doing the work
    raw = t.rollouts(2000, np.random.default_rng(2))["q"]
    p = histogram(raw, Bins(t.lo, t.hi, t.n_bins))[1:-1]
    assert p.max() > 2 * p.min()


def test_make_dataset_accepts_the_task():
    t = MazeTask(layout="umaze", T=16)
    a = make_dataset(t, 64, seed=0)
    b = make_dataset(t, 64, seed=0, use_cache=False)
    assert np.array_equal(a.X, b.X) and a.X.shape == (64, 16, 2)


def test_plausibility_catches_walls_and_missed_goals():
    t = MazeTask(layout="umaze", T=8)

    def plan(*pts):
        pts = np.asarray(pts, float)
        idx = np.linspace(0, len(pts) - 1, t.T)
        return np.stack([np.interp(idx, np.arange(len(pts)), pts[:, k]) for k in (0, 1)], -1)

    good = plan((1, 1), (1, 3), (3, 3), (3, 1))                     # around the U
    through = plan((1, 1), (3, 1))                                   # straight through wall (2, 1)
    jump = np.array([[1.0, 1.0]] * 4 + [[3.0, 1.0]] * 4)            # one segment over the wall
    corner = np.array([[1.4, 2.35]] * 4 + [[1.7, 2.65]] * 4)        # clips wall (2, 2)'s corner
    graze = np.array([[1.4, 2.4]] * 4 + [[1.7, 2.7]] * 4)           # touches the corner only
    outside = good.copy()
    outside[3] = (0.2, 2.0)
    nan = good.copy()
    nan[2, 0] = np.nan
    X = np.stack([good, through, jump, corner, graze, outside, nan]).astype(np.float32)
    assert t.is_plausible(X).tolist() == [True, False, False, False, True, False, False]
    assert crosses_wall(X, "umaze").tolist() == [False, True, True, True, False, True, True]
    # ending away from the goal
    goal = X[:2, -1].astype(float) + np.array([[0.3, 0.0], [0.6, 0.0]])
    assert t.is_plausible(X[[0, 0]], goal=goal).tolist() == [True, False]


def test_plausibility_rejects_plans_faster_than_the_point_mass():
    t = MazeTask(layout="umaze")                       # T = 64, 3 steps per frame: |Δ| <= 0.15
    walk = np.stack([np.ones(64), np.linspace(1, 3, 64)], -1)   # along row 1, 0.032 per frame
    teleport = walk.copy()
    teleport[:32] = (1, 1)
    teleport[32:] = (1, 3)                             # same ends, no wall, one jump of 2 cells
    X = np.stack([walk, teleport]).astype(np.float32)
    assert not crosses_wall(X, "umaze").any()
    assert t.is_plausible(X).tolist() == [True, False]


@pytest.mark.parametrize("name", ("umaze", "large"))
def test_crossing_test_agrees_with_dense_sampling(name):
    """Random plans with short and long segments: every crossing that dense sampling of the
    segments finds is reported, and the exact test reports almost nothing more."""
    g = np.random.default_rng(3)
    R, C = M.layout_grid(name).shape
    n, T = 400, 6
    X = np.stack([g.uniform(0.6, R - 1.6, (n, T)), g.uniform(0.6, C - 1.6, (n, T))], -1)
    X[: n // 2] = X[: n // 2, :1] + np.cumsum(g.normal(0, 0.3, (n // 2, T, 2)), 1)
    X = np.clip(X, [0.6, 0.6], [R - 1.6, C - 1.6])
    s = np.linspace(0, 1, 400)
    dense = X[:, :-1, None] + s[None, None, :, None] * np.diff(X, axis=1)[:, :, None]
    W = M.layout_grid(name)
    ij = np.floor(dense + 0.5).astype(int)
    inside = W[ij[..., 0], ij[..., 1]] & (np.abs(dense - ij) < 0.5).all(-1)
    sampled = inside.any(axis=(1, 2))
    exact = crosses_wall(X, name)
    assert sampled.sum() > 20 and (~sampled).sum() > 20
    assert np.all(exact[sampled])
    assert (exact & ~sampled).sum() <= 0.02 * n


def test_task_interface(monkeypatch):
    t = MazeTask()
    assert t.layout == "medium" and t.T % 4 == 0 and t.channels == ("x", "y")
    assert (t.lo, t.hi, t.frame_interval) == (1.0, 10.0, 6)
    assert t.horizon_steps * M.DT == pytest.approx(3.78)
    u = MazeTask(layout="umaze", T=16)
    assert u.horizon_steps >= MazeTask(layout="umaze").horizon_steps  # same physical time
    X, _ = u.build(50, np.random.default_rng(0))
    Z = u.to_model(X)
    assert np.abs(Z).max() <= 1.0
    np.testing.assert_allclose(u.from_model(Z), X, atol=1e-5)
    with pytest.raises(NotImplementedError, match="build"):
        t.generate(np.ones(3), np.random.default_rng(0))
    with pytest.raises(ValueError, match="expected trajectories of shape"):
        t.measure(np.zeros((2, t.T + 1, 2), np.float32))
    monkeypatch.setattr(M, "GIVE_UP_EMPTY", 3000)
    with pytest.raises(ValueError, match="narrower range"):
        MazeTask(layout="umaze", T=16, lo=30.0, hi=40.0).build(10, np.random.default_rng(0))
