"""Benchmark scripts: ``python -m reid_ext.benchmarks.<method>`` (ours vs reference, side by side)."""
import json


def save_json(path, result):
    """Write a script's result dict to ``--json PATH`` (read by ``python -m reid_ext.benchmarks``);
    no-op without a path. Returns the result."""
    if path:
        with open(path, "w") as f:
            json.dump(result, f, indent=1, default=float)  # numpy scalars
    return result
