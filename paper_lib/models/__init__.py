"""Generative sequence models behind one interface (docs/design.md section 4).

``fit(spec_or_kind, dataset, profile, seed)`` trains (or loads from the cache) one of
``MODEL_CLASSES``; ``sample(trained, n, seed)`` draws (n, T, C) trajectories in task units;
``denoise`` is the model-based data deviation kernel of the diffusion classes.
"""
from .sampling import alpha_bar, count_params, denoise, load_net, sample
from .spec import MODEL_CLASSES, MODEL_CODE_VERSION, REFERENCE_CLASSES, ModelSpec, make_spec
from .train import Trained, build, fit

__all__ = ["MODEL_CLASSES", "REFERENCE_CLASSES", "MODEL_CODE_VERSION", "ModelSpec", "make_spec", "Trained", "fit",
           "sample", "denoise", "alpha_bar", "count_params", "build", "load_net"]
