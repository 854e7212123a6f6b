"""Visualisation commands: pictures of what a model does and how its training went.

    reid-visualize ranks --config-file CFG --out DIR [--queries I ... | --num-queries N]
                         [--variants plain lbr nformer hash afr rerank] [--topk K]
                         [KEY VALUE ...]                        (rank lists, :mod:`.rank_list`)
    reid-visualize curves --logdir DIR [--out curves.png] [--tags PATTERN ...]
                                                                (training curves, :mod:`.curves`)
    reid-visualize attention ...   (C2F attention picture, :mod:`.c2f_attention`)

The modules import matplotlib / fastreid lazily, so importing this package is cheap.
"""


class VisualizeError(ValueError):
    """A user-facing error of a visualize command (bad option, missing file, switch off);
    ``reid-visualize`` prints its message and exits with status 2."""
