"""A tiny helper for adding yacs keys idempotently (a plugin may be added twice)."""
from fastreid.config import CfgNode as CN


def add_key(cfg, dotted_key, default):
    """Create ``cfg.<dotted_key>`` with ``default`` unless it already exists.

    Intermediate nodes are created as needed. A dict default becomes a CfgNode.
    """
    *parents, leaf = dotted_key.split(".")
    node = cfg
    for name in parents:
        if name not in node:
            node[name] = CN()
        node = node[name]
    if leaf not in node:
        node[leaf] = CN(default) if isinstance(default, dict) else default
    return node[leaf]
