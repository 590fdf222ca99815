"""Where a last-bit difference is amplified: two copies of a model trained in lockstep, one of
them on a training set moved by one rounding step. The check behind the README's "Where in
training it happens" paragraph (Reproducibility).

    .venv/bin/python bench/training_chaos.py [--steps 600] [--every 25] \
        [--out bench/training_chaos.csv]

Both copies start from the same weights and draw the same batches with the same noise; the second
sees half of the training entries (model units) moved by one float32 rounding step (relative
≈ 6e-8), the size of difference another CPU's rounding makes in a computed value. Every
``--every`` steps the script records, for the default profile's schedule (its first ``--steps``
steps of ``train_steps``), the relative distance between the copies' weights (``weights_rel``),
between their outputs on a fixed batch (``outputs_rel``: the transformer's predicted means, the
U-Net's predicted noise at the middle step), the parameter tensor that differs most (relative),
and the first copy's loss. Runs:

- ``transformer`` on ``sine`` and ``cone``, as trained;
- ``transformer-no-key-bias`` on ``sine``: the key part of each attention block's bias held at
  zero. Softmax over keys ignores a bias added to every key (it adds the same q·b to a whole row
  of scores), so its exact gradient is zero and whatever the backward pass leaves there is
  rounding, which AdamW divides by its own square root and so turns into steps of size ≈ lr.
  Holding it at zero removes that one amplifier without changing what the network can express;
- ``transformer-lr-5e-4`` on ``sine``: a quarter of the default learning rate;
- ``transformer-float64`` on ``sine``: weights, data and arithmetic in float64, the nudge one
  float64 rounding step (relative ≈ 1e-16);
- ``diffusion-unet`` on ``sine`` and ``cone``, for contrast.

Training runs on one thread, as in ``paper_lib.models.fit``. Results go to ``--out`` (written
atomically).
"""
from __future__ import annotations

import argparse
import sys
from dataclasses import replace
from pathlib import Path

import torch

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE.parent))   # paper_lib from this checkout, installed or not
from paper_lib import drift, get_profile, make_dataset  # noqa: E402
from paper_lib.cache import atomic_write_csv  # noqa: E402
from paper_lib.models import make_spec  # noqa: E402
from paper_lib.models.diffusion import noise_to  # noqa: E402
from paper_lib.models.train import initial_state, train_step  # noqa: E402

COLUMNS = ["model", "task", "step", "weights_rel", "outputs_rel", "top_tensor", "top_rel", "loss"]
# model name -> (model class, spec fields changed, dtype, key bias held at zero)
MODELS = {"transformer": ("transformer", {}, torch.float32, False),
          "transformer-no-key-bias": ("transformer", {}, torch.float32, True),
          "transformer-lr-5e-4": ("transformer", {"lr": 5e-4}, torch.float32, False),
          "transformer-float64": ("transformer", {}, torch.float64, False),
          "diffusion-unet": ("diffusion-unet", {}, torch.float32, False)}
RUNS = [("transformer", "sine"), ("transformer", "cone"), ("transformer-no-key-bias", "sine"),
        ("transformer-lr-5e-4", "sine"), ("transformer-float64", "sine"),
        ("diffusion-unet", "sine"), ("diffusion-unet", "cone")]


def nudged(data: torch.Tensor) -> torch.Tensor:
    """``data`` with every second entry moved up by one rounding step of its dtype."""
    out = data.clone()
    flat = out.view(-1)
    flat[::2] = torch.nextafter(flat[::2], torch.tensor(float("inf"), dtype=flat.dtype))
    return out


def hold_key_bias_at_zero(net: torch.nn.Module) -> None:
    """Zero the key third of every attention block's ``qkv`` bias and keep its gradient zero."""
    for block in net.blocks:
        bias = block.qkv.bias
        d = bias.shape[0] // 3
        keep = torch.ones_like(bias)
        keep[d:2 * d] = 0
        with torch.no_grad():
            bias.mul_(keep)
        bias.register_hook(lambda g, keep=keep: g * keep)


def outputs(net, spec, probe, sched) -> torch.Tensor:
    """The network's outputs on the fixed batch ``probe`` (model units)."""
    with torch.no_grad():
        if not spec.is_diffusion:
            return net(probe[:, :-1])[0]
        t = torch.full((len(probe),), spec.diffusion_steps // 2)
        noise = torch.randn(probe.shape, generator=torch.Generator().manual_seed(0))
        return net(noise_to(probe, t, sched, noise), t)


def relative(a, b) -> float:
    a, b = a.detach(), b.detach()
    return float((a - b).norm() / a.norm().clamp_min(1e-30))


def lockstep(model: str, task_name: str, profile, steps: int, every: int,
             nudge: bool = True) -> list[dict]:
    """Rows of one run (see the module docstring); ``nudge=False``: both copies see the same
    data (the control: their distances stay exactly 0)."""
    kind, changes, dtype, hold_key_bias = MODELS[model]
    task = drift.task_for(task_name, profile)
    X = make_dataset(task, profile.n_train, seed=0).X
    data = torch.as_tensor(task.to_model(X), dtype=dtype)
    spec = replace(make_spec(kind, profile), **changes)
    copies = [initial_state(spec, x, seed=0, device="cpu") + (x,)
              for x in (data, nudged(data) if nudge else data)]
    for net, ema, *_ in copies:
        if hold_key_bias:
            hold_key_bias_at_zero(net)
        net.to(data.dtype)   # in place: the optimiser keeps the same parameters
        ema.to(data.dtype).load_state_dict(net.state_dict())
    probe, rows = data[:256], []
    for step in range(steps):
        losses = [train_step(net, ema, opt, x, gen, spec, sched, step)
                  for net, ema, opt, gen, sched, x in copies]
        if (step + 1) % every:
            continue
        a, b = (c[0] for c in copies)
        sched = copies[0][4]
        pa, pb = dict(a.named_parameters()), dict(b.named_parameters())
        per = {k: relative(pa[k], pb[k]) for k in pa}
        top = max(per, key=per.get)
        flat = [torch.cat([p.detach().ravel() for p in n.parameters()]) for n in (a, b)]
        out = [outputs(n, spec, probe, sched) for n in (a, b)]
        rows.append({"model": model, "task": task_name, "step": step + 1,
                     "weights_rel": f"{relative(*flat):.3g}",
                     "outputs_rel": f"{relative(*out):.3g}", "top_tensor": top,
                     "top_rel": f"{per[top]:.3g}",
                     "loss": f"{float(losses[0].detach()):.4g}"})
    return rows


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--steps", type=int, default=600)
    ap.add_argument("--every", type=int, default=25)
    ap.add_argument("--profile", default="default")
    ap.add_argument("--out", default=str(HERE / "training_chaos.csv"))
    a = ap.parse_args()
    for name, value in (("--steps", a.steps), ("--every", a.every)):
        if value < 1:
            ap.error(f"{name} must be a positive number of steps, got {value}")
    profile = get_profile(a.profile)
    if a.steps > profile.train_steps:
        ap.error(f"--steps must be at most the profile's train_steps ({profile.train_steps}), "
                 f"got {a.steps}")
    torch.set_num_threads(1)
    rows = []
    for model, task in RUNS:
        rows += lockstep(model, task, profile, a.steps, a.every)
        last = rows[-1]
        print(model, task, *(f"{c}={last[c]}" for c in COLUMNS[2:]), flush=True)
    atomic_write_csv(Path(a.out), COLUMNS, rows)


if __name__ == "__main__":
    main()
