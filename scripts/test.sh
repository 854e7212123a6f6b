#!/usr/bin/env bash
# README command 2: install what is missing, then run the test suite (CPU).
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/install.sh
export FASTREID_DATASETS=${FASTREID_DATASETS:-$PWD/datasets}
exec python3 -m pytest -q -p no:cacheprovider tests "$@"
