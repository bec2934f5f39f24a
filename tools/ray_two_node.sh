#!/usr/bin/env bash
# A real two-node Ray cluster on this one machine (`ray start --head` plus a second `ray start --address`,
# one CPU each, their own ports and temp folder), a tiny sweep on it with `bench run --executor ray`
# (3 real LFW people, none/noise/opom-convex from mobileface onto mobileface), its rows checked against a
# serial run of the same sweep, then both nodes stopped (their own process groups, nothing else).
# The nodes listen on 127.0.0.1 only, so Ray's token authentication is switched off for them.
#
#   tools/ray_two_node.sh   # PYTHON=.venv/bin/python by default; BENCH_CACHE is reused when set; KEEP_RAY_TMP=1 keeps the logs
set -euo pipefail

repo=$(cd "$(dirname "$0")/.." && pwd)
PY=${PYTHON:-$repo/.venv/bin/python}
RAY=$(dirname "$PY")/ray
work=$(mktemp -d /tmp/ray2n.XXXX)  # short: Ray's socket paths live under it and must stay < 108 bytes
export PYTHONPATH="$repo${PYTHONPATH:+:$PYTHONPATH}"  # this checkout's bench, on the driver and on both nodes
export BENCH_CACHE=${BENCH_CACHE:-$work/cache} BENCH_SPLITS=$work/splits
export RAY_USAGE_STATS_ENABLED=0 RAY_AUTH_MODE=disabled
head_port=${HEAD_PORT:-26379}
pids=()

stop_nodes() {  # each node runs in its own process group (setsid): end each group, the second node first
  for ((i = ${#pids[@]} - 1; i >= 0; i--)); do kill -- "-${pids[i]}" 2>/dev/null || true; sleep 2; done
  for pid in "${pids[@]}"; do wait "$pid" 2>/dev/null || true; done
  if [[ -n ${KEEP_RAY_TMP:-} ]]; then echo "== nodes stopped; logs and stores kept in $work"; else rm -rf "$work"; echo "== nodes stopped"; fi
}
trap stop_nodes EXIT

PYTHONPATH="$repo/tests:$PYTHONPATH" "$PY" -c "
from pathlib import Path; from mini_splits import write_mini_splits; write_mini_splits(Path('$BENCH_SPLITS'))"

common=(--node-ip-address 127.0.0.1 --num-cpus 1 --object-store-memory 100000000 --block --disable-usage-stats)
echo "== head node on port $head_port"
setsid "$RAY" start --head --port "$head_port" --include-dashboard false --temp-dir "$work/ray" \
  --node-manager-port 26380 --object-manager-port 26381 --runtime-env-agent-port 26382 \
  --dashboard-agent-listen-port 26383 --dashboard-agent-grpc-port 26384 --metrics-export-port 26385 \
  --min-worker-port 26400 --max-worker-port 26449 "${common[@]}" > "$work/head.log" 2>&1 &
pids+=($!)
"$PY" - "$head_port" <<'EOF'
import socket, sys, time
address = f"127.0.0.1:{sys.argv[1]}"
for _ in range(60):  # the head takes a few seconds to listen
    with socket.socket() as s:
        if s.connect_ex(("127.0.0.1", int(sys.argv[1]))) == 0:
            break
    time.sleep(1)
else:
    sys.exit(f"the head node at {address} did not come up")
EOF
echo "== second node joins 127.0.0.1:$head_port"
setsid "$RAY" start --address "127.0.0.1:$head_port" \
  --node-manager-port 26390 --object-manager-port 26391 --runtime-env-agent-port 26392 \
  --dashboard-agent-listen-port 26393 --dashboard-agent-grpc-port 26394 --metrics-export-port 26395 \
  --min-worker-port 26450 --max-worker-port 26499 "${common[@]}" > "$work/node2.log" 2>&1 &
pids+=($!)
"$PY" - "$head_port" <<'EOF'
import sys, time, ray
ray.init(address=f"127.0.0.1:{sys.argv[1]}", logging_level="error")
for _ in range(60):
    alive = [n for n in ray.nodes() if n["Alive"]]
    if len(alive) == 2:
        break
    time.sleep(2)
print(f"cluster: {len(alive)} nodes alive, {ray.cluster_resources().get('CPU')} CPUs")
ray.shutdown()
sys.exit(0 if len(alive) == 2 else "the second node did not join")
EOF

sweep=(--methods none,noise,opom-convex -p opom-convex.steps=2 --source mobileface --target mobileface
       --split commons --budget 600,1200)
echo "== bench run --executor ray on the cluster"
time "$PY" -m bench.cli run "${sweep[@]}" --executor ray --address "127.0.0.1:$head_port" --results "$work/ray-results"
echo "== the same sweep, serial, on one thread (as each Ray task runs)"
time OMP_NUM_THREADS=1 "$PY" -m bench.cli run "${sweep[@]}" --results "$work/serial-results"

"$PY" - "$work" <<'EOF'
import sys
from pathlib import Path
from bench.store import ResultStore

work = Path(sys.argv[1])
drop = ("provenance", "t1", "t2")  # where and how fast a row was made, not what it measured
rows = {name: {r["cell"]: {k: v for k, v in r.items() if k not in drop} for r in ResultStore(work / name).rows()}
        for name in ("ray-results", "serial-results")}
ray_rows, serial_rows = rows["ray-results"], rows["serial-results"]
profile = ResultStore(work / "ray-results").profiles()[-1]
print(f"ray: {len(ray_rows)} cells from {profile['ray_nodes']} node(s); serial: {len(serial_rows)} cells")
same = ray_rows == serial_rows and len(ray_rows) == 6
print("rows identical to the serial run's" if same else "ROWS DIFFER")
sys.exit(0 if same and profile["ray_nodes"] == 2 else 1)
EOF
