"""Rank-list pictures: a query, then its top-k gallery images, framed green (same identity)
or red (another identity), one row per ranking (plain, LBR, NFormer, AFR...).

    reid-visualize ranks --config-file CFG --out DIR [--queries 0 5 7 | --num-queries N]
                         [--variants plain lbr nformer hash afr rerank] [--topk 10]
                         [--dataset NAME] [--tile-height 128] [KEY VALUE ...]

e.g. ``reid-visualize ranks --config-file projects/SFT/configs/synthperson.yml --out ranks/
MODEL.WEIGHTS logs/sft/synthperson/model_final.pth``. Writes ``DIR/query_NNNN.png`` (one
picture per query, one row per ranking, the row titled with its name and the query's AP
under that ranking) and ``DIR/ranks.json`` (what each tile shows). The features and
rankings are those of the evaluation (:mod:`.rankings`); the gallery items with the
query's identity *and* camera are left out, as the evaluation protocol does. Flags come
first, the ``KEY VALUE`` config overrides last.

Functional core (tested directly): :func:`rank_rows` (ranking -> shown items and their
match flags) and :func:`draw_rank_list` / :func:`draw_rank_rows` (paths or PIL images and
match flags in, PIL image out), whose geometry is :func:`rank_layout`.
"""
import argparse
import json
import os
import re
import sys
from dataclasses import dataclass
from typing import Optional, Sequence

import numpy as np
from PIL import Image, ImageDraw, ImageFont

from . import VisualizeError

GREEN = (0, 170, 0)  # frame of a gallery item with the query's identity
RED = (220, 0, 0)  # frame of a gallery item of another identity
GRAY = (140, 140, 140)  # frame when the identity is unknown (match None)
QUERY = (30, 90, 220)  # frame of the query
BACKGROUND = (255, 255, 255)
TEXT = (0, 0, 0)


# --------------------------------------------------------------------------- geometry
@dataclass(frozen=True)
class Layout:
    """Pixel geometry of a rank picture: ``num_rows`` rows of a query tile and up to
    ``topk`` gallery tiles, each tile (``tile_h`` x ``tile_w``) inside a ``border``-wide
    frame, with ``label_lines`` text lines under it; optional row titles on the left
    (``title_w``) and a header line on top (``header_h``)."""
    num_rows: int
    topk: int
    tile_h: int = 128
    tile_w: int = 64
    border: int = 4
    gap: int = 8
    query_gap: int = 24
    margin: int = 8
    line_h: int = 13
    label_lines: int = 2
    title_w: int = 0
    header_h: int = 0

    @property
    def frame_w(self):
        return self.tile_w + 2 * self.border

    @property
    def frame_h(self):
        return self.tile_h + 2 * self.border

    @property
    def row_h(self):
        return self.frame_h + self.label_lines * self.line_h + 4 + self.margin

    @property
    def size(self):
        """(width, height) of the picture."""
        k = max(self.topk, 1)
        width = (2 * self.margin + self.title_w + self.frame_w + self.query_gap
                 + k * self.frame_w + (k - 1) * self.gap)
        return width, self.header_h + self.margin + self.num_rows * self.row_h

    def frame_box(self, row, j):
        """(x0, y0, x1, y1) of the frame of tile ``j`` of row ``row`` (x1, y1 exclusive);
        j = 0 is the query, j = r the gallery item at rank r (1-based)."""
        x0 = self.margin + self.title_w
        if j > 0:
            x0 += self.frame_w + self.query_gap + (j - 1) * (self.frame_w + self.gap)
        y0 = self.header_h + self.margin + row * self.row_h
        return x0, y0, x0 + self.frame_w, y0 + self.frame_h

    def tile_box(self, row, j):
        """(x0, y0, x1, y1) of the image inside the frame."""
        x0, y0, x1, y1 = self.frame_box(row, j)
        b = self.border
        return x0 + b, y0 + b, x1 - b, y1 - b


def rank_layout(num_rows, topk, tile=(128, 64), row_titles=True, header=True):
    """The :class:`Layout` that :func:`draw_rank_rows` uses for these arguments."""
    return Layout(num_rows=num_rows, topk=topk, tile_h=int(tile[0]), tile_w=int(tile[1]),
                  title_w=130 if row_titles else 0, header_h=22 if header else 0)


# --------------------------------------------------------------------------- ranking rows
def rank_rows(ranking, q_pids, q_camids, g_pids, g_camids, topk=10, queries=None):
    """The gallery items a rank list shows, under the evaluation protocol.

    ranking: (n, N) gallery indices, best first (N <= G; numpy or torch); row i is the
    ranking of query ``queries[i]`` (default ``range(n)``). q_pids / q_camids: (Q,);
    g_pids / g_camids: (G,). Gallery items with the query's pid *and* camid are skipped
    (as in :func:`reid_ext.evaluation.rank.evaluate_ranking`), then the first ``topk`` are
    kept. Returns a list of n pairs ``(indices (k,) int64, matches (k,) bool)``, k <= topk.
    """
    ranking = np.asarray(ranking.cpu() if hasattr(ranking, "cpu") else ranking)
    if ranking.ndim != 2:
        raise ValueError(f"ranking must be 2-D (queries, gallery), got shape {ranking.shape}")
    q_pids, q_camids = np.asarray(q_pids), np.asarray(q_camids)
    g_pids, g_camids = np.asarray(g_pids), np.asarray(g_camids)
    queries = np.arange(len(ranking)) if queries is None else np.asarray(queries)
    if len(queries) != len(ranking):
        raise ValueError(f"ranking has {len(ranking)} rows but {len(queries)} queries are named")
    if ranking.size and (ranking.min() < 0 or ranking.max() >= len(g_pids)):
        raise ValueError(f"ranking has gallery indices outside [0, {len(g_pids)})")
    out = []
    for row, q in zip(ranking, queries):
        same_id = g_pids[row] == q_pids[q]
        keep = ~(same_id & (g_camids[row] == q_camids[q]))
        idx = row[keep][:topk].astype(np.int64)
        out.append((idx, same_id[keep][:topk].astype(bool)))
    return out


# --------------------------------------------------------------------------- drawing
@dataclass
class RankRow:
    """One row of a rank picture: gallery images best first (paths or PIL images), their
    match flags (True / False / None = unknown), text under each tile, a row title."""
    gallery: Sequence
    matches: Sequence[Optional[bool]]
    labels: Optional[Sequence[str]] = None
    name: str = ""


def _font(size=11):
    try:
        return ImageFont.load_default(size=size)
    except TypeError:  # Pillow < 10.1: fixed-size bitmap font
        return ImageFont.load_default()


def _tile(src, w, h):
    if isinstance(src, Image.Image):
        img = src
    else:
        try:
            img = Image.open(src)
        except FileNotFoundError:
            raise FileNotFoundError(f"image not found: {src}") from None
    return img.convert("RGB").resize((w, h), Image.BILINEAR)


def _frame_color(match):
    return GRAY if match is None else (GREEN if match else RED)


def _wrap(text, font, width):
    """Lines of ``text``: split on newlines, then cut to fit ``width`` pixels, preferably
    after a space or a '+' (e.g. "hash256+AFR(w=100)")."""
    lines = []
    for para in str(text).split("\n"):
        cur = ""
        for piece in re.split(r"(?<=[+ ])", para):
            if not cur or font.getlength(cur + piece) <= width:
                cur += piece
                continue
            lines.append(cur.rstrip())
            cur = piece
        while len(cur) > 1 and font.getlength(cur) > width:  # one piece too long: cut it
            n = len(cur) - 1
            while n > 1 and font.getlength(cur[:n]) > width:
                n -= 1
            lines.append(cur[:n])
            cur = cur[n:]
        lines.append(cur.rstrip())
    return lines


def _put_tile(canvas, draw, layout, row, j, src, color, label, font):
    x0, y0, x1, y1 = layout.frame_box(row, j)
    draw.rectangle((x0, y0, x1 - 1, y1 - 1), fill=color)
    tx0, ty0, _, _ = layout.tile_box(row, j)
    canvas.paste(_tile(src, layout.tile_w, layout.tile_h), (tx0, ty0))
    if label:
        cx = (x0 + x1) / 2
        for i, line in enumerate(str(label).split("\n")[:layout.label_lines]):
            draw.text((cx, y1 + 2 + i * layout.line_h), line, fill=TEXT, font=font, anchor="ma")


def draw_rank_rows(query, rows, out_path=None, query_label="query", title=None, tile=(128, 64)):
    """One picture of a query's rank lists, one row per ranking.

    query: path or PIL image; rows: list of :class:`RankRow` (or (gallery, matches[, labels
    [, name]]) tuples), each with up to topk gallery images best first. Every tile is
    resized to ``tile`` (H, W); frames: query blue, match green, non-match red, unknown gray;
    ``labels`` (default "#rank") are written under the tiles, ``name`` to the left of the
    row, ``title`` on top. Geometry: ``rank_layout(len(rows), topk, tile, any names, title)``.
    Returns the PIL image (RGB), also written to ``out_path`` when given.
    """
    rows = [r if isinstance(r, RankRow) else RankRow(*r) for r in rows]
    if not rows:
        raise ValueError("draw_rank_rows needs at least one row")
    for i, r in enumerate(rows):
        if len(r.gallery) != len(r.matches):
            raise ValueError(f"row {i}: {len(r.gallery)} gallery images but "
                             f"{len(r.matches)} match flags")
        if r.labels is not None and len(r.labels) != len(r.gallery):
            raise ValueError(f"row {i}: {len(r.gallery)} gallery images but {len(r.labels)} labels")
    topk = max(len(r.gallery) for r in rows)
    layout = rank_layout(len(rows), topk, tile, row_titles=any(r.name for r in rows),
                         header=bool(title))
    canvas = Image.new("RGB", layout.size, BACKGROUND)
    draw = ImageDraw.Draw(canvas)
    font, bold = _font(11), _font(13)
    if title:
        draw.text((layout.margin, 4), title, fill=TEXT, font=bold)
    for r, row in enumerate(rows):
        _put_tile(canvas, draw, layout, r, 0, query, QUERY, query_label, font)
        labels = row.labels
        if labels is None:
            labels = [f"#{i + 1}" for i in range(len(row.gallery))]
        for i, (src, match) in enumerate(zip(row.gallery, row.matches)):
            _put_tile(canvas, draw, layout, r, i + 1, src, _frame_color(match), labels[i], font)
        if row.name:
            x0, y0, _, y1 = layout.frame_box(r, 0)
            lines = _wrap(row.name, bold, layout.title_w - layout.margin)
            top = (y0 + y1) / 2 - len(lines) * 8
            for i, line in enumerate(lines):
                draw.text((layout.margin, top + 16 * i), line, fill=TEXT, font=bold)
    if out_path:
        os.makedirs(os.path.dirname(os.path.abspath(out_path)), exist_ok=True)
        canvas.save(out_path)
    return canvas


def draw_rank_list(query, gallery, matches, out_path=None, labels=None, query_label="query",
                   row_label="", title=None, tile=(128, 64)):
    """A single rank list: :func:`draw_rank_rows` with one row (same conventions)."""
    return draw_rank_rows(query, [RankRow(gallery, matches, labels, row_label)], out_path,
                          query_label, title, tile)


# --------------------------------------------------------------------------- the command
_KEY = re.compile(r"^[A-Z][A-Z0-9_]*(\.[A-Z0-9_]+)+$")


def _split_overrides(argv):
    """argv -> (flags, KEY VALUE overrides): the overrides start at the first config key."""
    for i, tok in enumerate(argv):
        if _KEY.match(tok):
            flags, opts = argv[:i], argv[i:]
            late = [o for o in opts if o.startswith("--")]
            if late:
                raise VisualizeError(f"{' '.join(late)} must come before the KEY VALUE overrides")
            return flags, opts
    return argv, []


def _parser():
    ap = argparse.ArgumentParser(
        prog="reid-visualize ranks",
        description="Rank-list pictures (green = same identity, red = another one), one row "
                    "per ranking; config overrides KEY VALUE (e.g. MODEL.WEIGHTS) come last.")
    ap.add_argument("--config-file", required=True)
    ap.add_argument("--out", required=True, help="output folder (query_NNNN.png, ranks.json)")
    sel = ap.add_mutually_exclusive_group()
    sel.add_argument("--queries", type=int, nargs="+", metavar="I",
                     help="query indices (0-based, in the test loader's query order)")
    sel.add_argument("--num-queries", type=int, default=6,
                     help="N queries evenly spread over the query set (default 6)")
    ap.add_argument("--variants", nargs="+", metavar="NAME",
                    help="rankings, one row each: plain, rerank, lbr, nformer, hash, afr or an "
                         "exact variant name (default: plain + every enabled variant)")
    ap.add_argument("--topk", type=int, default=10, help="gallery images per row (default 10)")
    ap.add_argument("--dataset", help="test set (default: the first of DATASETS.TESTS)")
    ap.add_argument("--tile-height", type=int, default=128,
                    help="tile height in pixels; width follows INPUT.SIZE_TEST (default 128)")
    return ap


def _query_indices(args, num_q):
    if args.queries is not None:
        bad = [q for q in args.queries if not 0 <= q < num_q]
        if bad:
            raise VisualizeError(f"--queries {bad}: the query set has {num_q} images "
                                 f"(indices 0..{num_q - 1})")
        return list(dict.fromkeys(args.queries))
    if args.num_queries < 1:
        raise VisualizeError(f"--num-queries must be >= 1, got {args.num_queries}")
    n = min(args.num_queries, num_q)
    return sorted(set(np.linspace(0, num_q - 1, n).round().astype(int).tolist()))


def _query_ap(order, q, query, gallery):
    from ..evaluation.rank import evaluate_ranking
    try:
        _, ap, _ = evaluate_ranking(order[None], query.pids[q:q + 1], gallery.pids,
                                    query.camids[q:q + 1], gallery.camids)
    except ValueError:  # the query's identity is not in the (rest of the) gallery
        return None
    return float(ap[0])


def main(argv=None):
    """``reid-visualize ranks``; returns a summary dict (also written as DIR/ranks.json)."""
    flags, opts = _split_overrides(list(sys.argv[1:] if argv is None else argv))
    args = _parser().parse_args(flags)
    if args.topk < 1:
        raise VisualizeError(f"--topk must be >= 1, got {args.topk}")
    from . import rankings as R
    from ..evaluation.rank import rank_by_distance

    cfg = R.build_cfg(args.config_file, opts)
    aliases = R.check_variants(cfg, args.variants)
    model = R.build_model(cfg)
    dataset = args.dataset or cfg.DATASETS.TESTS[0]
    query, gallery = R.extract_features(cfg, model, dataset)
    if not query.paths:
        raise VisualizeError(f"the test loader of {dataset} gives no image paths (img_paths)")
    qidx = _query_indices(args, len(query.pids))
    outputs = R.compute_rankings(cfg, query, gallery, model, aliases)

    h_in, w_in = cfg.INPUT.SIZE_TEST
    tile = (args.tile_height, max(16, round(args.tile_height * w_in / h_in)))
    per_name = {}
    for name, out in outputs.items():
        order = (np.asarray(out.ranking.cpu() if hasattr(out.ranking, "cpu") else out.ranking)[qidx]
                 if out.ranking is not None else rank_by_distance(np.asarray(out.dist)[qidx]))
        per_name[name] = (order, rank_rows(order, query.pids, query.camids, gallery.pids,
                                           gallery.camids, args.topk, qidx))
    os.makedirs(args.out, exist_ok=True)
    summary = {"config_file": args.config_file, "weights": cfg.MODEL.WEIGHTS, "dataset": dataset,
               "topk": args.topk, "tile": list(tile), "rankings": list(outputs), "queries": []}
    for i, q in enumerate(qidx):
        rows, info = [], {}
        for name, (order, shown) in per_name.items():
            idx, matches = shown[i]
            ap = _query_ap(order[i], q, query, gallery)
            labels = [f"{r + 1}. id {gallery.pids[g]}\ncam {gallery.camids[g]}"
                      for r, g in enumerate(idx)]
            title = R.display_name(cfg, name) + ("\nno match in gallery" if ap is None
                                                 else f"\nAP {100 * ap:.1f}%")
            rows.append(RankRow([gallery.paths[g] for g in idx], matches.tolist(), labels, title))
            info[name] = {"gallery": [gallery.paths[g] for g in idx],
                          "indices": idx.tolist(), "pids": gallery.pids[idx].tolist(),
                          "camids": gallery.camids[idx].tolist(), "matches": matches.tolist(),
                          "AP": ap}
        png = os.path.join(args.out, f"query_{q:04d}.png")
        draw_rank_rows(query.paths[q], rows, png,
                       query_label=f"query id {query.pids[q]}\ncam {query.camids[q]}",
                       title=f"query {q}: {os.path.basename(query.paths[q])}   green: same id, "
                             f"red: other id",
                       tile=tile)
        summary["queries"].append({"index": q, "path": query.paths[q], "pid": query.pids[q].item(),
                                   "camid": query.camids[q].item(), "png": png, "rows": info})
    with open(os.path.join(args.out, "ranks.json"), "w") as f:
        json.dump(summary, f, indent=1)
    print(f"reid-visualize ranks: wrote {len(qidx)} pictures ({', '.join(outputs)}; "
          f"top-{args.topk}) and ranks.json to {args.out}")
    return summary


if __name__ == "__main__":  # same as reid-visualize ranks (errors as messages)
    from .cli import main as cli_main
    cli_main(["ranks", *sys.argv[1:]])
