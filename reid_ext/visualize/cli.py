"""``reid-visualize``: one console script for the visualisation commands.

    reid-visualize ranks --config-file CFG --out DIR [--queries I ... | --num-queries N]
                         [--variants plain lbr nformer hash afr rerank] [--topk 10] [KEY VALUE ...]
    reid-visualize curves --logdir OUTPUT_DIR [--out curves.png] [--tags PATTERN ...]
    reid-visualize attention --config-file CFG --image IMG --pixel Y X --out PNG [...]

(also ``python -m reid_ext.visualize.cli``). ``reid-visualize SUBCOMMAND -h`` gives each
command's options; see docs/visualize.md.
"""
import sys

from . import VisualizeError

COMMANDS = {
    "ranks": ("reid_ext.visualize.rank_list", "rank-list pictures (green = same identity, red = "
              "another), one row per ranking (plain, LBR, NFormer, AFR...)"),
    "curves": ("reid_ext.visualize.curves",
               "loss, lr and evaluation curves of a training's OUTPUT_DIR"),
    "attention": ("reid_ext.visualize.c2f_attention", "C2F coarse / fine attention of one pixel"),
}


def _usage():
    lines = ["usage: reid-visualize {ranks,curves,attention} [-h] ...", "", "commands:"]
    lines += [f"  {name:<10} {help_}" for name, (_, help_) in COMMANDS.items()]
    lines += ["", "reid-visualize COMMAND -h shows the options of a command."]
    return "\n".join(lines)


def main(argv=None):
    """Dispatch ``argv`` (default sys.argv[1:]) to the command's ``main``. Returns None
    (the console script exits 0); a :class:`~reid_ext.visualize.VisualizeError` exits with
    its message (status 2). The commands' own ``main`` return what they wrote."""
    import importlib

    argv = list(sys.argv[1:] if argv is None else argv)
    if not argv or argv[0] in ("-h", "--help"):
        print(_usage())
        if not argv:
            raise SystemExit(2)
        return
    name, rest = argv[0], argv[1:]
    if name not in COMMANDS:
        print(_usage(), file=sys.stderr)
        raise SystemExit(f"reid-visualize: unknown command '{name}' (choose from "
                         f"{', '.join(COMMANDS)})")
    module = importlib.import_module(COMMANDS[name][0])
    try:
        module.main(rest)
    except VisualizeError as e:
        print(f"reid-visualize {name}: error: {e}", file=sys.stderr)
        raise SystemExit(2) from None


if __name__ == "__main__":
    main()
