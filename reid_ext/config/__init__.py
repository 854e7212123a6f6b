"""Configuration: fastreid's defaults extended with every reid_ext key.

``get_cfg()`` returns a fresh config; ``add_reid_ext_config(cfg)`` extends one the
user already has (idempotent). ``merge_from_file`` errors name the key and the file.
"""
from .defaults import add_reid_ext_config, get_cfg, merge_from_file  # noqa: F401
from .keys import add_key  # noqa: F401
