#!/usr/bin/env bash
# The Python tests that CI skips, and the Python benchmarks.
#
# torch (with its CUDA wheels, ~6 GB installed), pyspark and ray are too heavy
# for CI's 25 minutes, so CI runs python/tests without them and the HF and
# Spark tests skip with their reason; this script installs everything into
# a venv (default .venv-int, kept between runs) and runs all of it.
#
#   bash python/run_integration.sh [VENV]
#   SEMID_BENCH_DATA=emb.npy bash python/run_integration.sh   # benchmark data
#
# Needs Java 17+ on PATH for Spark. First run: about 10 minutes of downloads.
set -euo pipefail
cd "$(dirname "$0")/.."
venv="${1:-.venv-int}"
[ -x "$venv/bin/python" ] || python3 -m venv "$venv"
"$venv/bin/pip" install -q "maturin>=1.9,<2" numpy pytest torch transformers \
  pyspark pyarrow "pandas<3" "ray[data]" pytrec-eval-terrier
"$venv/bin/pip" install -q --force-reinstall --no-deps ./python

echo "=== pytest python/tests (all, HF, Spark and Ray included) ==="
"$venv/bin/python" -m pytest -q -rs -W ignore::FutureWarning python/tests

data="${SEMID_BENCH_DATA:-}"
if [ -z "$data" ] && [ -f ../shared/data/pypi_text_16k.npy ]; then
  data=../shared/data/pypi_text_16k.npy
fi
echo "=== HF constrained generate: semid vs dict trie ==="
"$venv/bin/python" examples/python/hf_constrained.py ${data:+"$data"} --runs 6
echo "=== Spark encode (local[2]) vs single process ==="
"$venv/bin/python" examples/python/spark_encode.py --demo --rows 200000 --check 2>/dev/null
echo "=== Ray Data encode (2 workers) vs single process ==="
"$venv/bin/python" examples/python/ray_encode.py --demo --rows 200000 --check 2>/dev/null
