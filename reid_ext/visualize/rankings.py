"""The rankings of a model on a test set, as its evaluation computes them.

Used by ``reid-visualize ranks`` (:mod:`.rank_list`); in Python::

    cfg = build_cfg("configs/quickstart.yml", ["MODEL.WEIGHTS", "logs/quickstart/model_final.pth"])
    model = build_model(cfg)
    query, gallery = extract_features(cfg, model, cfg.DATASETS.TESTS[0])
    outputs = compute_rankings(cfg, query, gallery, model, check_variants(cfg, ["plain", "lbr"]))
    # {"plain": VariantOutput(dist=...), "LBR": VariantOutput(dist=...)}

The config is set up as ``reid-train --eval-only`` does (``MODEL.DEVICE auto``, no
ImageNet download, ``MODEL.WEIGHTS`` loaded with fastreid's Checkpointer) but nothing is
written to ``OUTPUT_DIR``. Features come from the trainer's test loader through
:class:`~reid_ext.evaluation.ReidExtEvaluator` (flip test, dict outputs), the plain
distance is the evaluator's (``TEST.AQE``, ``TEST.METRIC``; ``TEST.RERANK`` is shown as
its own "rerank" row) and the other rankings are the outputs of the registered evaluation
variants (:data:`reid_ext.evaluation.EVAL_VARIANTS`), called as the evaluator calls them.
"""
import os
import sys
from collections import OrderedDict

from . import VisualizeError

# Short names of --variants: (config switch to name in errors, is it on?, output-name test,
# switch keys turned off when the name is not asked for). Other names are matched exactly
# (case-insensitive) against the outputs of the registered variants.
_ALIASES = OrderedDict([
    ("plain", ("", lambda c: True, None, ())),
    ("rerank", ("TEST.RERANK.ENABLED True", lambda c: c.TEST.RERANK.ENABLED, None, ())),
    ("lbr", ("TEST.LBR.ENABLED True", lambda c: c.TEST.LBR.ENABLED,
             lambda n: n == "LBR", ("TEST.LBR.ENABLED",))),
    ("nformer", ("TEST.NFORMER.ENABLED True (and a model with an NFormer, or TEST.NFORMER.WEIGHTS)",
                 lambda c: c.TEST.NFORMER.ENABLED,
                 lambda n: n == "NFormer", ("TEST.NFORMER.ENABLED",))),
    ("hash", ("TEST.HASH.ENABLED True (SSR hashing model)", lambda c: c.TEST.HASH.ENABLED,
              lambda n: n.startswith("hash") and "+AFR" not in n, ("TEST.HASH.ENABLED",))),
    ("afr", ("TEST.HASH.ENABLED True and TEST.HASH.AFR_W > 0 (SSR model with MODEL.ATTR.ENABLED)",
             lambda c: c.TEST.HASH.ENABLED and c.TEST.HASH.AFR_W > 0,
             lambda n: n.startswith("hash") and "+AFR" in n, ("TEST.HASH.ENABLED",))),
])


def _warn(msg):
    print(f"reid-visualize: warning: {msg}", file=sys.stderr)


def build_cfg(config_file, opts=()):
    """get_cfg + the yml + overrides, device resolved, ImageNet download off (frozen)."""
    import reid_ext  # noqa: F401  (shims + registrations)
    from ..config import get_cfg, merge_from_file
    from ..engine.trainer import resolve_device, seed_from_cfg

    if not os.path.isfile(config_file):
        raise VisualizeError(f"--config-file {config_file}: no such file")
    cfg = get_cfg()
    merge_from_file(cfg, config_file)
    try:
        cfg.merge_from_list(list(opts))
    except (KeyError, AssertionError, ValueError) as e:
        raise VisualizeError(f"in the command-line overrides {list(opts)}: {e}") from None
    cfg.MODEL.BACKBONE.PRETRAIN = False  # weights, if any, come from MODEL.WEIGHTS
    if "HASH" in cfg.TEST:
        cfg.TEST.HASH.EXPORT = False  # no hash_codes_*.npz in OUTPUT_DIR
    cfg = resolve_device(cfg)
    seed_from_cfg(cfg)
    return cfg


def build_model(cfg):
    """The model of ``ENGINE.TRAINER``, MODEL.WEIGHTS loaded (random with a warning when
    empty), in eval mode."""
    from fastreid.utils.checkpoint import Checkpointer
    from ..engine import get_trainer_class

    model = get_trainer_class(cfg).build_model(cfg)
    weights = cfg.MODEL.WEIGHTS
    if weights:
        if not os.path.isfile(weights):
            raise VisualizeError(f"MODEL.WEIGHTS {weights}: no such file")
        Checkpointer(model).load(weights)
    else:
        _warn("MODEL.WEIGHTS is empty: the model is randomly initialised, its rankings are "
              "meaningless (pass MODEL.WEIGHTS path/to/model_final.pth)")
    return model.eval()


def extract_features(cfg, model, dataset_name):
    """Run the test loader of ``dataset_name`` through the model as the evaluation does.

    Returns (query, gallery) :class:`~reid_ext.evaluation.FeatureSet` s (features before
    AQE, model extras, pids, camids, image paths)."""
    from ..engine import get_trainer_class, inference_on_dataset
    from ..evaluation import ReidExtEvaluator

    class _Collect(ReidExtEvaluator):
        def evaluate(self):
            return self._split(self._gathered())

    loader, num_query = get_trainer_class(cfg).build_test_loader(cfg, dataset_name)
    if num_query == 0 or num_query == len(loader.dataset):
        raise VisualizeError(f"{dataset_name}: {num_query} queries and "
                             f"{len(loader.dataset) - num_query} gallery images; need both")
    return inference_on_dataset(model, loader, _Collect(cfg, num_query, model=model),
                                cfg.TEST.FLIP.ENABLED)


def check_variants(cfg, names=None):
    """Validate ``--variants`` before any work: a short name whose config switch is off
    raises :class:`VisualizeError` naming the key to set. Returns the lower-cased names
    (None = plain + every enabled variant)."""
    if names is None:
        return None
    out = []
    for name in names:
        key = name.lower()
        if key in _ALIASES:
            switch, is_on, _, _ = _ALIASES[key]
            if not is_on(cfg):
                raise VisualizeError(f"--variants {name}: not enabled by the config; set "
                                     f"{switch} (as a KEY VALUE override or in the yml)")
        out.append(key)
    return list(dict.fromkeys(out))


def display_name(cfg, name):
    """The row title of a ranking."""
    if name == "plain":
        return f"plain ({cfg.TEST.METRIC}" + (", AQE)" if cfg.TEST.AQE.ENABLED else ")")
    if name == "rerank":
        return "k-reciprocal re-ranking"
    return name


def compute_rankings(cfg, query, gallery, model=None, variants=None):
    """{name: VariantOutput} for the asked rankings, in the order plain, rerank, variants.

    ``variants``: output of :func:`check_variants` (None = plain, rerank when
    TEST.RERANK.ENABLED, and every output of the registered variants). "plain" is the
    distance of TEST.METRIC on the (AQE-expanded) features, "rerank" fastreid's
    k-reciprocal distance; the variants see the AQE-expanded features, as in the evaluator.
    Variants not asked for are switched off before they run.
    """
    from fastreid.utils.compute_dist import build_dist

    from ..evaluation import FeatureSet, VariantOutput, k_reciprocal_distance
    from ..evaluation.evaluator import expand_queries
    from ..evaluation.variants import registered_variants

    q_feat, g_feat = expand_queries(cfg, query.feats, gallery.feats)
    want = set(variants) if variants is not None else None
    out = OrderedDict()
    if want is None or "plain" in want:
        out["plain"] = VariantOutput(dist=build_dist(q_feat, g_feat, cfg.TEST.METRIC))
    if cfg.TEST.RERANK.ENABLED and (want is None or "rerank" in want):
        r = cfg.TEST.RERANK
        out["rerank"] = VariantOutput(dist=k_reciprocal_distance(
            q_feat, g_feat, r.K1, r.K2, r.LAMBDA, cfg.TEST.METRIC))

    run_cfg = cfg.clone()
    run_cfg.defrost()
    if want is not None:  # switch off what was not asked for (NFormer, hashing can be slow)
        exact = {n for n in want if n not in _ALIASES}
        for alias, (_, _, _, keys) in _ALIASES.items():
            needed = alias in want or (alias == "hash" and "afr" in want) or \
                (alias == "afr" and "hash" in want)
            if keys and not needed and not exact:
                for key in keys:
                    node = run_cfg
                    *parents, leaf = key.split(".")
                    for p in parents:
                        node = node[p]
                    node[leaf] = False
    run_cfg.freeze()
    q = FeatureSet(q_feat, query.pids, query.camids, query.extras, query.paths)
    g = FeatureSet(g_feat, gallery.pids, gallery.camids, gallery.extras, gallery.paths)
    produced = OrderedDict()
    for variant in registered_variants():
        produced.update(variant(run_cfg, q, g, model))
    for name, res in produced.items():
        if res.dist is None and res.ranking is None:
            continue  # metrics only: nothing to draw
        if want is None or name.lower() in want or any(
                _ALIASES[a][2] is not None and _ALIASES[a][2](name) for a in want if a in _ALIASES):
            out[name] = res
    missing = [n for n in (variants or []) if n not in _ALIASES and n not in
               {k.lower() for k in out}]
    if missing:
        names = (["plain"] + (["rerank"] if cfg.TEST.RERANK.ENABLED else [])
                 + [n for n, r in produced.items() if r.dist is not None or r.ranking is not None])
        raise VisualizeError(f"--variants {' '.join(missing)}: no such ranking with this config; "
                             f"available: {', '.join(names)} (short names: "
                             f"{', '.join(_ALIASES)})")
    return out
