"""``maze`` (navigation): D4RL maze2d layouts, a point mass and a waypoint controller, in NumPy.

The dynamics *approximate* D4RL's MuJoCo model of maze2d (``d4rl/pointmaze/maze_model.py``); no
MuJoCo, D4RL or data set is used or downloaded. What is kept: time step 0.01 s, one physics step
per control step, a sphere of radius 0.1 and density 1000 (mass 4.19) on two slide joints with
damping 1, motors of gear 100 with controls clipped to [−1, 1], the velocity clipped to
[−5, 5] per axis before every step (D4RL's ``clip_velocity``), and MuJoCo's semi-implicit Euler
integrator (damping treated implicitly). What differs: contacts. MuJoCo's soft contacts are
replaced by a hard rule: the ball's bounding square may not enter a wall cell; each axis is moved
in turn and a move that would enter a wall is clipped at the wall with the normal velocity set to
zero (no bounce, no friction). A step moves at most 0.053 cells, far less than a wall, so nothing
tunnels.

Coordinates follow D4RL's ``qpos``: cell (i, j) of a layout (row i, column j of the grid below)
is the unit square centred at (x, y) = (i, j); channel ``x`` is the row index, ``y`` the column
index, in cell units. :func:`wall_cells` gives the wall squares in the same coordinates.

The controller is D4RL's ``WaypointController``: a shortest path over the grid (BFS here, where
D4RL runs Q-iteration) from the start cell to the goal cell; the waypoints are the centres of the
path's cells, each shifted by −U[0, 0.2) per axis (D4RL's jitter), then the goal itself;
action = 10 (waypoint − position) − 1 · velocity, clipped to [−1, 1]; the next waypoint is taken
once the ball is within 0.1 of the current one. An episode starts at a random free cell (position
jittered by U[−0.1, 0.1], velocity N(0, 0.1²) as in D4RL's reset) and heads to a random other
free cell (goal jittered by U[−0.1, 0.1] as in ``set_target``); it *arrives* at the first step
within 0.1 of the goal. The plan is recorded every ``frame_interval`` physics steps for ``T``
frames; frames at or after the arrival are the goal itself (padding).

q = travel distance Σ_t ‖p_{t+1} − p_t‖ of the recorded plan (cells), which includes the last
short hop onto the goal, so ``measure`` is exact on the demonstrations by construction.
Curation: from a pool of successful, wall-respecting demonstrations, ``curate_uniform`` keeps the
same number per bin of a fixed range, so the data set's travel distance is uniform: a designer
bounding the power a robot spends on a trip.
"""
from __future__ import annotations

from dataclasses import dataclass
from functools import lru_cache

import numpy as np

from ..metrics import Bins, _integer
from .base import Task
from .cone import travel_distance

__all__ = ["MazeTask", "LAYOUTS", "LAYOUT_DEFAULTS", "layout_grid", "free_cells", "wall_cells",
           "shortest_path", "next_hop_table", "physics_step", "simulate", "sample_episodes",
           "crosses_wall", "DT", "MASS", "GEAR", "DAMPING", "V_MAX", "BODY_RADIUS", "P_GAIN",
           "D_GAIN", "SOLVE_THRESH", "WAYPOINT_JITTER", "POS_JITTER", "INIT_VEL_STD"]

# --- physical and controller constants (approximating d4rl/pointmaze, see the module docstring)
DT = 0.01                                 # MuJoCo timestep; frame_skip = 1
BODY_RADIUS = 0.1                         # particle_geom: sphere of size 0.1 ...
MASS = 1000.0 * 4.0 / 3.0 * np.pi * BODY_RADIUS ** 3   # ... with density 1000 (inertiafromgeom)
GEAR = 100.0                              # actuator.motor gear; ctrlrange [-1, 1]
DAMPING = 1.0                             # default joint damping
V_MAX = 5.0                               # MazeEnv.clip_velocity: qvel clipped to [-5, 5] per axis
P_GAIN, D_GAIN = 10.0, -1.0               # WaypointController gains
SOLVE_THRESH = 0.1                        # WaypointController.solve_thresh (waypoint and goal)
WAYPOINT_JITTER = 0.2                     # waypoint = cell centre − U[0, 0.2) per axis
POS_JITTER = 0.1                          # reset / set_target: cell centre + U[-0.1, 0.1]
INIT_VEL_STD = 0.1                        # reset: qvel ~ N(0, 0.1^2)

LAYOUTS: dict[str, str] = {               # D4RL maze2d layouts: '#' wall, 'O' free, 'G' goal
    "umaze": "#####\n#GOO#\n###O#\n#OOO#\n#####",
    "medium": ("########\n#OO##OO#\n#OO#OOO#\n##OOO###\n#OO#OOO#\n#O#OO#O#\n#OOO#OG#\n"
               "########"),
    "large": ("############\n#OOOO#OOOOO#\n#O##O#O#O#O#\n#OOOOOO#OOO#\n#O####O###O#\n"
              "#OO#O#OOOOO#\n##O#O#O#O###\n#OO#OOO#OGO#\n############"),
}


def _check_layout(name: str) -> str:
    if name not in LAYOUTS:
        raise ValueError(f"unknown maze layout {name!r}; valid layouts: {', '.join(LAYOUTS)}")
    return name


@lru_cache(maxsize=None)
def _grid(name: str) -> np.ndarray:
    g = np.array([[c == "#" for c in row] for row in LAYOUTS[_check_layout(name)].split("\n")])
    g.setflags(write=False)
    return g


def layout_grid(name: str) -> np.ndarray:
    """Walls of a layout: bool (rows, cols), True where cell (i, j) is a wall."""
    return _grid(name).copy()


def free_cells(name: str) -> np.ndarray:
    """Integer (i, j) of the free cells (goal included), shape (n_free, 2), in row-major order."""
    return np.argwhere(~_grid(name))


def wall_cells(name: str) -> np.ndarray:
    """Wall squares for plotting, (n_walls, 4) float: (x0, y0, x1, y1) = (i−½, j−½, i+½, j+½) in
    the trajectories' coordinates (x = row index, y = column index)."""
    ij = np.argwhere(_grid(name)).astype(float)
    return np.concatenate([ij - 0.5, ij + 0.5], axis=1)


@lru_cache(maxsize=None)
def next_hop_table(name: str) -> np.ndarray:
    """BFS over the free cells (4-neighbour moves): ``nxt[g, c]`` is the flat index (i·cols + j) of
    the cell after cell c on a shortest path to goal g (``g`` itself at the goal, −1 where c is a
    wall or unreachable). Ties are broken by the fixed move order (+x, −x, +y, −y). Shape
    (cells, cells), int64."""
    walls = _grid(name)
    R, C = walls.shape
    nxt = np.full((R * C, R * C), -1, np.int64)
    moves = ((1, 0), (-1, 0), (0, 1), (0, -1))
    for g in np.flatnonzero(~walls.ravel()):
        nxt[g, g] = g
        frontier = [g]
        while frontier:               # BFS outward from the goal; the parent is the next hop
            new = []
            for c in frontier:
                i, j = divmod(int(c), C)
                for di, dj in moves:
                    a, b = i + di, j + dj
                    if 0 <= a < R and 0 <= b < C and not walls[a, b] and nxt[g, a * C + b] < 0:
                        nxt[g, a * C + b] = c
                        new.append(a * C + b)
            frontier = new
    nxt.setflags(write=False)
    return nxt


def shortest_path(name: str, start, goal) -> np.ndarray:
    """Cells (i, j) of a shortest 4-neighbour path from cell ``start`` to cell ``goal``, both
    included, shape (length + 1, 2), int."""
    walls = _grid(name)
    C = walls.shape[1]
    s, g = int(start[0]) * C + int(start[1]), int(goal[0]) * C + int(goal[1])
    nxt = next_hop_table(name)
    if walls.ravel()[s] or walls.ravel()[g]:
        raise ValueError(f"start {tuple(start)} and goal {tuple(goal)} must be free cells")
    path = [s]
    while path[-1] != g:
        path.append(int(nxt[g, path[-1]]))
    return np.array([divmod(c, C) for c in path])


def _move_axis(pos, vel, walls, ax):
    """Move along axis ``ax`` by DT·vel, stopping the ball's square at the first wall (in place)."""
    o = pos[:, 1 - ax]
    k_lo = np.floor(o - BODY_RADIUS - 0.5).astype(np.int64) + 1    # cells the ball overlaps on
    k_hi = np.ceil(o + BODY_RADIUS + 0.5).astype(np.int64) - 1     # the other axis (1 or 2)
    new = pos[:, ax] + DT * vel[:, ax]
    up = vel[:, ax] > 0
    c = np.where(up, np.ceil(new + BODY_RADIUS + 0.5) - 1, np.floor(new - BODY_RADIUS - 0.5) + 1)
    c = c.astype(np.int64)
    R, C = walls.shape
    n_ax = R if ax == 0 else C
    c = np.clip(c, 0, n_ax - 1)
    k_lo, k_hi = (np.clip(k, 0, (C if ax == 0 else R) - 1) for k in (k_lo, k_hi))
    hit = (walls[c, k_lo] | walls[c, k_hi]) if ax == 0 else (walls[k_lo, c] | walls[k_hi, c])
    hit &= vel[:, ax] != 0
    stop = np.where(up, c - 0.5 - BODY_RADIUS, c + 0.5 + BODY_RADIUS)
    pos[:, ax] = np.where(hit, stop, new)
    vel[:, ax] = np.where(hit, 0.0, vel[:, ax])


def physics_step(pos, vel, action, walls):
    """One D4RL step for a batch: clip the velocity to ±V_MAX per axis, apply the clipped action
    as force GEAR·a with joint damping (semi-implicit Euler, damping implicit), move with wall
    collisions. pos, vel (n, 2) float64 are updated in place and returned."""
    np.clip(vel, -V_MAX, V_MAX, out=vel)
    force = GEAR * np.clip(action, -1.0, 1.0)
    vel[:] = (MASS * vel + DT * force) / (MASS + DT * DAMPING)
    _move_axis(pos, vel, walls, 0)
    _move_axis(pos, vel, walls, 1)
    return pos, vel


def sample_episodes(name: str, n: int, rng: np.random.Generator):
    """Random episodes: start cell uniform over the free cells, goal cell uniform over the other
    free cells. Returns (start (n, 2), goal (n, 2)) continuous positions (cell centre + U[−0.1,
    0.1] per axis) and the cells (start_cell, goal_cell), each (n, 2) int."""
    cells = free_cells(name)
    a = rng.integers(len(cells), size=n)
    b = (a + rng.integers(1, len(cells), size=n)) % len(cells)      # any other cell, uniformly
    start = cells[a] + rng.uniform(-POS_JITTER, POS_JITTER, size=(n, 2))
    goal = cells[b] + rng.uniform(-POS_JITTER, POS_JITTER, size=(n, 2))
    return start, goal, cells[a], cells[b]


def simulate(name: str, start, goal, rng: np.random.Generator, n_frames: int,
             frame_interval: int = 1):
    """Waypoint-controller rollouts from ``start`` to ``goal`` ((n, 2) positions in free cells),
    all episodes at once (the loop runs over physics steps only).

    Records ``n_frames`` frames, one every ``frame_interval`` steps (frame f = position after
    f·frame_interval steps), so the horizon is (n_frames − 1)·frame_interval steps; frames at or
    after the arrival step are replaced by the goal. Returns a dict: ``frames`` (n, n_frames, 2)
    float64, ``arrival`` (n,) int (first step within SOLVE_THRESH of the goal; −1 if none within
    the horizon), ``success`` (n,) bool.
    """
    walls = _grid(name)
    C = walls.shape[1]
    start, goal = np.asarray(start, float), np.asarray(goal, float)
    n = len(start)
    # waypoints: jittered centres of the path's cells after the start cell, then the goal itself
    nxt = next_hop_table(name)
    si, gi = np.rint(start).astype(np.int64), np.rint(goal).astype(np.int64)
    cur, g = si[:, 0] * C + si[:, 1], gi[:, 0] * C + gi[:, 1]
    if np.any(walls.ravel()[cur]) or np.any(walls.ravel()[g]):
        raise ValueError("start and goal positions must lie in free cells")
    hops = []
    while True:
        cur = nxt[g, cur]
        hops.append(cur)
        if np.all(cur == g):
            break
    hops = np.stack(hops, axis=1)                                   # (n, L), ends repeat g
    n_wp = (hops != g[:, None]).sum(1) + 1                          # intermediate cells + goal
    wp = np.stack(divmod(hops, C), axis=-1).astype(float)
    wp -= WAYPOINT_JITTER * rng.uniform(size=wp.shape)
    wp[np.arange(n), n_wp - 1] = goal
    pos = start.copy()
    vel = INIT_VEL_STD * rng.standard_normal((n, 2))
    idx = np.zeros(n, np.int64)
    rows = np.arange(n)
    arrival = np.full(n, -1, np.int64)
    frames = np.empty((n, n_frames, 2))
    frames[:, 0] = pos
    n_steps = (n_frames - 1) * frame_interval
    for s in range(n_steps + 1):
        near = np.hypot(*(pos - goal).T) < SOLVE_THRESH
        arrival[(arrival < 0) & near] = s
        if s % frame_interval == 0:
            frames[:, s // frame_interval] = pos
        if s == n_steps or np.all(arrival >= 0):
            break
        target = wp[rows, idx]
        action = P_GAIN * (target - pos) + D_GAIN * vel
        reached = (np.hypot(*(pos - target).T) < SOLVE_THRESH) & (idx < n_wp - 1)
        idx += reached
        physics_step(pos, vel, action, walls)
    success = arrival >= 0
    f_arr = np.where(success, -(-arrival // frame_interval), n_frames)     # first padded frame
    pad = np.arange(n_frames)[None, :] >= f_arr[:, None]
    frames = np.where(pad[..., None], goal[:, None, :], frames)
    return {"frames": frames, "arrival": arrival, "success": success}


def _segments_meet_boxes(P, D, lo, hi):
    """Whether segments P + t·D, t in [0, 1] ((m, 1, 2)) meet the open boxes (lo, hi) ((m or 1,
    W, 2)): slab test, bool (m, W). A zero-length segment meets a box it lies strictly inside."""
    with np.errstate(divide="ignore", invalid="ignore"):
        t1, t2 = (lo - P) / D, (hi - P) / D
    inside = (P > lo) & (P < hi)                                       # the case D == 0
    t_in = np.where(D != 0, np.minimum(t1, t2), np.where(inside, -np.inf, np.inf))
    t_out = np.where(D != 0, np.maximum(t1, t2), np.where(inside, np.inf, -np.inf))
    return np.maximum(t_in.max(-1), 0.0) < np.minimum(t_out.min(-1), 1.0)


def crosses_wall(X: np.ndarray, name: str, chunk: int = 1_000_000) -> np.ndarray:
    """Whether each plan (n, T, 2) enters a wall: some point outside the maze's free interior box
    [0.5, rows − 1.5] × [0.5, cols − 1.5] or strictly inside a wall cell, or some segment
    p_t → p_{t+1} meeting the open interior of a wall cell (exact segment-versus-square test by
    slabs; grazing an edge or a corner does not count). Segments shorter than a cell per axis are
    tested against the 2 × 2 cells around them, longer ones against every inner wall cell.
    Returns bool (n,); a plan with a non-finite value counts as crossing."""
    walls = _grid(name)
    R, C = walls.shape
    X = np.asarray(X, np.float64)
    if X.ndim != 3 or X.shape[-1] != 2:
        raise ValueError(f"expected plans of shape (n, T, 2), got {X.shape}")
    n, T = X.shape[:2]
    finite = np.isfinite(X).all(axis=(1, 2))
    Xf = np.where(np.isfinite(X), X, 1.0)
    bad = ~finite | ((Xf[..., 0] < 0.5) | (Xf[..., 0] > R - 1.5) | (Xf[..., 1] < 0.5)
                     | (Xf[..., 1] > C - 1.5)).any(1)
    lim = np.array([R - 1, C - 1])
    ij = np.clip(np.floor(Xf + 0.5).astype(np.int64), 0, lim)             # cell of each point
    bad |= (walls[ij[..., 0], ij[..., 1]] & (np.abs(Xf - ij) < 0.5).all(-1)).any(1)
    if T < 2:
        return bad
    P, D = Xf[:, :-1].reshape(-1, 2), np.diff(Xf, axis=1).reshape(-1, 2)
    plan = np.repeat(np.arange(n), T - 1)
    move = (D != 0).any(-1) & ~bad[plan]
    short = move & (np.abs(D).max(-1) < 1)
    hit = np.zeros(len(P), bool)
    s = np.flatnonzero(short)                       # candidates: the 2 x 2 cells of the bbox
    base = np.clip(np.floor(np.minimum(P[s], P[s] + D[s]) + 0.5).astype(np.int64), 0, lim - 1)
    cand = base[:, None, :] + np.array([[0, 0], [0, 1], [1, 0], [1, 1]])   # (m, 4, 2)
    meet = _segments_meet_boxes(P[s, None], D[s, None], cand - 0.5, cand + 0.5)
    hit[s] = (meet & walls[cand[..., 0], cand[..., 1]]).any(-1)
    inner = np.argwhere(walls[1:-1, 1:-1]) + 1
    rest = np.flatnonzero(move & ~short)
    step = max(1, chunk // max(len(inner), 1))
    for a in range(0, len(rest) if len(inner) else 0, step):
        r = rest[a:a + step]
        hit[r] = _segments_meet_boxes(P[r, None], D[r, None], inner - 0.5, inner + 0.5).any(-1)
    return bad | hit.reshape(n, T - 1).any(1)


# per layout: physics steps covered by the recorded horizon (longest arrival seen in 20,000
# episodes: umaze 177, medium 343, large 554 steps) and the curated travel-distance range (cells)
LAYOUT_DEFAULTS: dict[str, dict] = {
    "umaze": {"steps": 189, "lo": 1.0, "hi": 6.0},
    "medium": {"steps": 378, "lo": 1.0, "hi": 10.0},
    "large": {"steps": 630, "lo": 1.0, "hi": 16.0},
}
MAX_POOL = 2_000_000      # build() gives up (ValueError) rather than simulate more episodes,
GIVE_UP_EMPTY = 20_000    # or when a bin is still empty after this many
_CHUNK = 8192             # episodes simulated at once (bounds memory)


@dataclass(frozen=True)
class MazeTask(Task):
    """Point-mass navigation in a D4RL maze2d layout; q = travel distance of the plan (cells).

    Plans are (n, T, 2) float32 positions (x = row, y = column, cell units), one frame every
    ``frame_interval`` physics steps of 0.01 s, padded with the goal after arrival. ``None``
    fields resolve per layout (``LAYOUT_DEFAULTS``): ``lo``/``hi`` the curated range (umaze
    [1, 6), medium [1, 10), large [1, 16)); ``frame_interval`` = ⌈steps / (T − 1)⌉ so the
    horizon covers the same physical time whatever T (T = 64: 3, 6 and 10 steps per frame);
    ``offset``/``scale`` map the free interior of the maze into [−1, 1] (one scale for both axes,
    so model units stay isotropic). ``generate`` is not available: demonstrations come from the
    controller, see ``build``.
    """

    name = "maze"
    condition_frames = (0, -1)   # a planner: start and goal are imposed (Diffuser), see drift.train
    quantity = "travel distance"
    unit = "cells"
    channels: tuple[str, ...] = ("x", "y")
    T: int = 64
    lo: float | None = None
    hi: float | None = None
    layout: str = "medium"
    frame_interval: int | None = None
    n_bins: int = 10
    offset: tuple[float, float] | None = None
    scale: float | None = None

    def __post_init__(self):
        d = LAYOUT_DEFAULTS[_check_layout(self.layout)]
        if int(self.T) < 2:
            raise ValueError(f"maze: need T >= 2 frames, got {self.T}")
        R, C = _grid(self.layout).shape
        fill = {"lo": d["lo"], "hi": d["hi"], "frame_interval": -(-d["steps"] // (self.T - 1)),
                "offset": ((R - 1) / 2, (C - 1) / 2), "scale": (max(R, C) - 2) / 2}
        for k, v in fill.items():
            if getattr(self, k) is None:
                object.__setattr__(self, k, v)
        if isinstance(self.offset, list):
            object.__setattr__(self, "offset", tuple(self.offset))
        if not self.hi > self.lo or int(self.frame_interval) < 1 or int(self.n_bins) < 1:
            raise ValueError(f"maze: need lo < hi, frame_interval >= 1 and n_bins >= 1, got "
                             f"lo={self.lo}, hi={self.hi}, frame_interval={self.frame_interval}, "
                             f"n_bins={self.n_bins}")
        super().__post_init__()
        if not self.lo >= 0:
            raise ValueError(f"maze: lo must be >= 0 (q is a travel distance), got lo={self.lo!r}")
        _integer("maze: frame_interval", self.frame_interval)
        _integer("maze: n_bins", self.n_bins)

    @property
    def bins(self) -> Bins:
        """The curation bins: ``n_bins`` equal bins over [lo, hi)."""
        return Bins(float(self.lo), float(self.hi), int(self.n_bins))

    @property
    def horizon_steps(self) -> int:
        """Physics steps covered by the T frames: (T − 1)·frame_interval."""
        return (self.T - 1) * int(self.frame_interval)

    def rollouts(self, n: int, rng: np.random.Generator) -> dict:
        """``n`` uncurated episodes (random start and goal cells): ``X`` (n, T, 2) float32,
        ``q`` (n,) travel distance of X, ``success`` (arrived within the horizon), ``plausible``
        (``is_plausible`` of X), ``start``/``goal`` (n, 2) positions, ``arrival`` (n,) step."""
        start, goal, _, _ = sample_episodes(self.layout, n, rng)
        out = simulate(self.layout, start, goal, rng, self.T, int(self.frame_interval))
        X = out["frames"].astype(np.float32)
        return {"X": X, "q": travel_distance(X), "success": out["success"],
                "plausible": self.is_plausible(X, goal), "start": start, "goal": goal,
                "arrival": out["arrival"]}

    def build(self, n, rng):
        """A curated data set: (X (n, T, 2) float32, q = measure(X) (n,) float64) with q uniform
        over ``bins`` — n // n_bins demonstrations per bin (``curate_uniform``) and the remaining
        n mod n_bins one each in distinct bins drawn at random. Only successful, plausible
        demonstrations enter the pool, which grows in rounds until every bin has enough.
        ``n`` must be a whole number >= 0, else ``ValueError``."""
        from ..datasets import curate_uniform     # local: datasets imports the task registry

        n, bins = _integer("n", n, minimum=0), self.bins
        if n == 0:
            return np.empty((0, self.T, self.C), np.float32), np.empty(0)
        per, extra = divmod(n, bins.n)
        need = per + (extra > 0)
        Xs, qs = [], []
        counts = np.zeros(bins.n, np.int64)
        total, m = 0, max(1024, 4 * n)
        while True:
            for a in range(0, m, _CHUNK):
                r = self.rollouts(min(_CHUNK, m - a), rng)
                keep = r["success"] & r["plausible"] & (r["q"] >= bins.lo) & (r["q"] < bins.hi)
                Xs.append(r["X"][keep])
                qs.append(r["q"][keep])
                counts += np.bincount(bins.index(r["q"][keep]) - 1, minlength=bins.n)
            total += m
            low = int(counts.min())
            if low >= need:
                break
            more = 1.2 * (need - low) * total / low if low else 3 * total    # next round
            if total + more > MAX_POOL or (low == 0 and total >= GIVE_UP_EMPTY):
                raise ValueError(f"maze {self.layout}: after {total} episodes the sparsest "
                                 f"travel-distance bin has {low} of the {need} demonstrations "
                                 f"needed; choose a narrower range than [{self.lo}, {self.hi})"
                                 f" or a smaller n")
            m = int(max(more, 1024))
        X, q = np.concatenate(Xs), np.concatenate(qs)
        idx = curate_uniform(q, bins, per, rng) if per else np.zeros(0, np.int64)
        if extra:
            unused = np.ones(len(q), bool)
            unused[idx] = False
            b_idx = bins.index(q)
            top_up = [rng.choice(np.flatnonzero(unused & (b_idx == b + 1)))
                      for b in np.sort(rng.choice(bins.n, extra, replace=False))]
            idx = np.sort(np.concatenate([idx, top_up]))
        return X[idx], q[idx]

    def generate(self, q, rng):
        raise NotImplementedError("maze demonstrations come from the controller, not from a "
                                  "requested q; use MazeTask.build / make_dataset('maze', n)")

    def conditions(self, X, idx) -> tuple[np.ndarray, np.ndarray]:
        """What a planner is given: the start and goal of the trajectories ``X[idx]`` (X (n, T, 2)
        in cells, idx (m,) ints). Returns (keep (T, 2) bool, True on the first and last frame;
        cond (m, T, 2) float32, X's start and goal there and 0 elsewhere), the ``inpaint``
        argument of :func:`paper_lib.drift.samples`."""
        X, idx = np.asarray(X), np.asarray(idx)
        keep = np.zeros((self.T, self.C), bool)
        keep[[0, -1]] = True
        cond = np.zeros((len(idx), self.T, self.C), np.float32)
        cond[:, 0], cond[:, -1] = X[idx, 0], X[idx, -1]
        return keep, cond

    def measure(self, X):
        """Travel distance Σ_t ‖p_{t+1} − p_t‖ of plans (n, T, 2) -> (n,) float64, cells; NaN for
        a plan with a NaN or inf (:func:`~paper_lib.tasks.cone.travel_distance`)."""
        return travel_distance(self.check(X))

    def is_plausible(self, X, goal=None):
        """Finite, no point outside the free interior or in a wall, no segment crossing a wall
        cell (:func:`crosses_wall`), no frame-to-frame step faster than the point mass can move
        (|Δx|, |Δy| ≤ (V_MAX + GEAR/MASS · DT) · DT · frame_interval + SOLVE_THRESH: the velocity
        bound plus one step of full thrust, as the clip acts before each step, plus the final hop
        onto the goal at arrival; a plan may not jump, e.g. onto an inpainted goal), and the last frame within 0.5 of ``goal`` ((n, 2) or (2,); default the last frame
        itself, the goal of a demonstration or of a plan whose last frame is inpainted).
        Returns bool (n,)."""
        X = self.check(X)
        end = X[:, -1].astype(np.float64)
        goal = end if goal is None else np.broadcast_to(np.asarray(goal, np.float64), end.shape)
        with np.errstate(invalid="ignore"):
            near = np.hypot(*(end - goal).T) <= 0.5
            step = np.abs(np.diff(X.astype(np.float64), axis=1)).max(axis=(1, 2))
            slow = step <= ((V_MAX + GEAR / MASS * DT) * DT * int(self.frame_interval)
                            + SOLVE_THRESH + 1e-6)
        return super().is_plausible(X) & ~crosses_wall(X, self.layout) & near & slow
