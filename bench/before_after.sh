#!/bin/bash
# Before/after side by side: alternate two checkouts (each with its own .venv), one run of
# each per round, paced (2k and 10k trades/s) then as fast as the server sends.
#   bench/before_after.sh BEFORE_TREE AFTER_TREE OUT.jsonl [ROUNDS]
# bench/flush.py must exist in both trees (copy it into an older one). docs/performance.md
set -u
before=$1; after=$2; out=$3; rounds=${4:-2}
: > "$out"
for _ in $(seq "$rounds"); do
  for label in before after; do
    tree=$before; [ $label = after ] && tree=$after
    (cd "$tree" && .venv/bin/python -m bench.flush --lingers default --rates 2000,10000 \
      --seconds 10 --label $label >> "$out")
  done
  for label in before after; do
    tree=$before; [ $label = after ] && tree=$after
    (cd "$tree" && .venv/bin/python -m bench.flush --lingers default --rates "" --max \
      --max-trades 300000 --label $label >> "$out")
  done
done
