#!/usr/bin/env bash
# Measures `funnel validate` (release) on hostile files: wall time and peak memory
# per file, each dropped as workflows/hostile.yaml into a copy of the valid fixture.
# Usage: bash benches/hostile_files.sh   (figures recorded in docs/validate.md)
set -euo pipefail
cd "$(dirname "$0")/.."
cargo build --release --quiet
bin=$PWD/target/release/funnel
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
python3 - "$work" <<'PY'
import random, shutil, sys
work = sys.argv[1]
base = "tests/fixtures/valid"
limit = 2 * 1024 * 1024 - 64
bomb = "a0: &a0 [lol, lol, lol, lol, lol, lol, lol, lol, lol]\n"
for i in range(1, 10):
    bomb += f"a{i}: &a{i} [{', '.join([f'*a{i-1}'] * 9)}]\n"
cases = {
    "invalid-utf8": b"name: Caf\xe9\n",
    "50-mb": b"#" * (50 * 1024 * 1024),
    "alias-bomb": bomb.encode(),
    "10000-deep-flow": ("a: " + "[" * 10000 + "]" * 10000 + "\n").encode(),
    "10000-deep-block": ("a:\n  " + "- " * 10000 + "x\n").encode(),
    "binary-garbage": random.Random(1).randbytes(1 << 20),
    "empty": b"",
    "duplicate-keys": b"name: A\nname: B\n",
    "2-mb-of-mappings": ("items:\n" + "".join(f"  - k{i}: v\n" for i in range(200000))).encode()[:limit],
    "2-mb-of-flow-lists": ("a: [" + "[]," * (limit // 3 - 2) + "[]]").encode(),
    "2-mb-of-flow-maps": ("a: [" + "{a: 1}," * (limit // 7 - 1) + "{a: 1}]").encode(),
}
for name, data in cases.items():
    d = f"{work}/{name}"
    shutil.copytree(base, d)
    with open(f"{d}/workflows/hostile.yaml", "wb") as f:
        f.write(data)
PY
printf '%-20s %8s %10s  %s\n' case seconds "peak KB" codes
for d in "$work"/*; do
  name=$(basename "$d")
  /usr/bin/time -o "$d.time" -f '%e %M' "$bin" validate "$d" --format json >"$d.json" 2>/dev/null || true
  stats=$(tail -1 "$d.time")
  codes=$(python3 -c 'import json,sys; print(",".join(sorted({x["code"] for x in json.load(open(sys.argv[1]))})))' "$d.json")
  printf '%-20s %8s %10s  %s\n' "$name" ${stats} "$codes"
done
