#!/usr/bin/env bash
# Install what is missing for reid_ext on this machine (idempotent; fast when done).
#  - reid_ext itself (editable) with torch/torchvision as a matching pair, faiss, yacs...
#  - fastreid 1.4.0 WITHOUT its dependency pins (it pins torch 1.13.1 / torchvision
#    0.14.1, which do not exist for Python 3.11); pip cannot drop one package's pins,
#    hence this second step.
set -euo pipefail
cd "$(dirname "$0")/.."
PY=${PYTHON:-python3}
# A torch/torchvision pair that works together (a CPU-only torch next to a CUDA-built
# torchvision fails with "operator torchvision::nms does not exist"): keep a working
# pair, else install a known-good CUDA pair (it also runs on machines without a GPU).
if ! "$PY" -c "import torch, torchvision; torchvision.ops.nms(torch.zeros(1, 4), torch.zeros(1), 0.5)" \
   >/dev/null 2>&1; then
  "$PY" -m pip install --disable-pip-version-check --root-user-action=ignore -q "torch==2.14.1" "torchvision==0.29.2"
fi
if ! "$PY" -c "import reid_ext, torchvision, faiss, pytest" >/dev/null 2>&1 \
   || ! "$PY" -m pip show reid_ext >/dev/null 2>&1; then
  "$PY" -m pip install --disable-pip-version-check --root-user-action=ignore -q -e ".[test]"
fi
if ! "$PY" -c "import importlib.metadata as m; assert m.version('fastreid') == '1.4.0'" \
   >/dev/null 2>&1; then
  "$PY" -m pip install --disable-pip-version-check --root-user-action=ignore -q --no-deps "fastreid==1.4.0"
fi
"$PY" -c "import reid_ext, torch, torchvision, faiss, fastreid; \
print(f'reid_ext {reid_ext.__version__}: torch {torch.__version__}, torchvision \
{torchvision.__version__}, faiss {faiss.__version__}, fastreid 1.4.0, \
cuda={torch.cuda.is_available()}')"
