#!/usr/bin/env bash
# Issue #13 on an Intel Xeon: our transcription against faster-whisper (tiny.en, same weights), pinned
# to 2 cores (taskset -c 0,1: the kind of machine the issue's Xeon figures came from), then to 8.
# Prints the CPU (model, AVX-512/VNNI/AMX flags, which logical CPUs share a core), load averages, and
# each bench's table; every step has a time limit and the whole run keeps within --budget seconds,
# skipping (and saying so) what no longer fits. Tables also go to $OUT (or /tmp/xeon_cpu_out).
#   source bench/xeon_cpu.env.sh && bash bench/xeon_cpu.sh            # on the GPU machine's host CPU
#   bash bench/xeon_cpu.sh --quick                                       # a short end-to-end check
# Steps (2 cores, then 8): jfk.wav greedy int8+float32 (bench/transcribe_cpu.py), jfk.wav beam 5,
# a few minutes of real speech greedy int8 and beam 5 int8 (bench/longform_cpu.py), and on 2 cores
# which oneDNN / oneMKL kernels each engine runs and their summed time (bench/xeon_cpu.kernels.py),
# and one thread's int8 products through each oneDNN route, AMX or not (bench/xeon_cpu.gemm.py).
set -u
cd "$(dirname "$0")/.." || exit 1
quick=0 budget= only=c2,kernels,c8 isa= tables=
while [ $# -gt 0 ]; do
  case "$1" in
    --quick) quick=1 ;;
    --budget) budget="$2"; shift ;;
    --only) only="$2"; shift ;;     # sections, comma-separated: c2 (benches on 2 cores), kernels, c8, profile, phases, parts, attention, gemm, batched
    --isa) isa="$2"; shift ;;       # cap oneDNN's ISA (ONEDNN_MAX_CPU_ISA), e.g. AVX512_CORE_FP16: no AMX
    --tables) tables="$2"; shift ;; # where the .md tables go (default $OUT); the log has them all anyway
    *) echo "usage: $0 [--quick] [--budget S] [--only c2,kernels,c8,profile,phases,parts,attention,gemm,batched] [--isa ISA] [--tables DIR]" >&2; exit 2 ;;
  esac
  shift
done
[ -n "$budget" ] || { [ "$quick" = 1 ] && budget=170 || budget=540; }
out="${tables:-${OUT:-/tmp/xeon_cpu_out}}"
tag=""
if [ -n "$isa" ]; then export ONEDNN_MAX_CPU_ISA="$isa"; tag="_$isa"; fi
has() { case ",$only," in *",$1,"*) return 0 ;; esac; return 1; }
mkdir -p "$out"
PY="${PYTHON:-python3}"
SECONDS=0

pin() {  # pin CPUS CMD...: run CMD on those logical CPUs only
  local cpus="$1"; shift
  if command -v taskset >/dev/null 2>&1; then taskset -c "$cpus" "$@"
  else "$PY" -c 'import os, sys; os.sched_setaffinity(0, {int(c) for c in sys.argv[1].split(",")}); os.execvp(sys.argv[2], sys.argv[2:])' "$cpus" "$@"
  fi
}

step() {  # step NAME CPUS ESTIMATE_S CMD...: run it if its estimate fits in what is left of the budget
  local name="$1" cpus="$2" estimate="$3"; shift 3
  [ "$quick" = 1 ] && estimate=$((estimate / 4))   # the estimates are for the full settings
  local left=$((budget - SECONDS))
  echo
  echo "=== $name (CPUs $cpus; ~${estimate}s; ${left}s left; load $(cut -d' ' -f1-3 /proc/loadavg))"
  if [ "$left" -lt "$estimate" ]; then
    echo "| $name | skipped: needs ~${estimate}s, ${left}s left |"
    return 0
  fi
  local start=$SECONDS
  timeout --kill-after=5 $((left - 3)) bash -c 'pin "$@"' _ "$cpus" "$@"
  local rc=$?
  [ "$rc" -eq 0 ] || echo "| $name | FAILED or stopped: exit $rc after $((SECONDS - start))s |"
  echo "=== $name took $((SECONDS - start))s (load $(cut -d' ' -f1-3 /proc/loadavg))"
}

kernels() {  # kernels ENGINE DTYPE [BEAM]: one engine's kernel log, summed over the second of two passes
  local engine="$1" dtype="$2" beam="${3:-1}" buf=()
  command -v stdbuf >/dev/null 2>&1 && buf=(stdbuf -oL -eL)
  ONEDNN_VERBOSE=1 MKL_VERBOSE=1 CT2_VERBOSE=1 "${buf[@]}" "$PY" bench/xeon_cpu.kernels.py "$engine" "$dtype" "$beam" 2>&1 | awk '
    /^KERNELS/ { print; passes++; next }
    /ctranslate2\].*(CPU:|ISA|backend|MKL|oneDNN)/ { sub(/^.*\] /, "  ct2: "); if (!seen[$0]++) print; next }
    /onednn_verbose.*(info,cpu,isa|info,cpu,runtime|info,oneDNN)/ { if (!seen[$0]++) print "  " $0; next }
    /^MKL_VERBOSE oneMKL|^MKL_VERBOSE Intel/ { if (!seen[$0]++) print "  " $0; next }
    passes != 1 { next }
    /onednn_verbose.*,exec,/ {
      for (i = 1; i <= NF; i++) if ($i == "exec") break
      types = ""; for (j = i + 4; j < NF; j++) if ($j ~ /src_/) { types = $j; break }
      gsub(/::[^ ]*/, "", types); gsub(/(src|wei|bia|dst)_/, "", types)   # e.g. "u8 s8 s32 f32"
      add("oneDNN " $(i + 2) " " $(i + 3) " " types, $(i + 2) " " $(i + 3) " " types " " $(NF - 1), $NF); next }
    /^MKL_VERBOSE/ { split($0, w, / +/); split(w[2], f, /[(,]/); t = w[3]; v = t + 0
      if (t ~ /us$/) v = v / 1000; else if (t ~ /ns$/) v = v / 1e6; else if (t !~ /ms$/) v = v * 1000
      if (!raw[f[1]]++) print "  first " f[1] " call (NThr: threads of one call):" substr($0, length(w[1] w[2]) + 2, 120)
      add("MKL " f[1], "MKL " f[1] "(" f[2] "," f[3] "," f[4] "," f[5] "," f[6] "," f[7] ",...)", v); next }
    function add(impl, shape, v) { ms[impl] += v; n[impl]++; sms[shape] += v; sn[shape]++ }
    END {
      print "  second pass, by kernel (elapsed ms of each call, summed: a call on NThr threads counts once):"
      for (k in ms) printf "  %9.1f ms %6d calls  %s\n", ms[k], n[k], k
      print "  second pass, the 12 costliest shapes (oneDNN: kind impl problem; MKL: first arguments):"
      for (k in sms) printf "  %9.1f ms %6d calls  %s\n", sms[k], sn[k], k | "sort -rn | head -12"
      close("sort -rn | head -12") }
  ' FS=','
}
export -f pin kernels
export PY

header() {
  echo "=== machine $(date -u +%FT%TZ), budget ${budget}s, quick=$quick, sections $only, ONEDNN_MAX_CPU_ISA=${ONEDNN_MAX_CPU_ISA:-unset}, MLX_AUDIO_COREML_ROWS_AMX=${MLX_AUDIO_COREML_ROWS_AMX:-unset}, MLX_AUDIO_COREML_SPLIT_CROSS=${MLX_AUDIO_COREML_SPLIT_CROSS:-unset}"
  lscpu 2>/dev/null | grep -E '^(Model name|CPU\(s\)|Thread\(s\) per core|Core\(s\) per socket|Socket\(s\)|NUMA node\(s\)|L2 cache|L3 cache|Hypervisor vendor)' || grep -m1 'model name' /proc/cpuinfo
  echo "matrix/vector flags: $(grep -m1 '^flags' /proc/cpuinfo | tr ' ' '\n' | grep -xE 'avx2|fma|avx512f|avx512bw|avx512vl|avx512_vnni|avx512_bf16|avx512_fp16|avx_vnni|amx_tile|amx_int8|amx_bf16|amx_fp16' | tr '\n' ' ')"
  echo "logical CPU -> core (CPUs 0-7): $(lscpu -p=CPU,CORE,SOCKET 2>/dev/null | grep -v '^#' | head -8 | tr '\n' ' ')"
  echo "load average: $(cat /proc/loadavg); python: $("$PY" -V 2>&1)"
  "$PY" -c 'import ctranslate2 as c; print("ctranslate2", c.__version__, "cpu compute types:", sorted(c.get_supported_compute_types("cpu")))' 2>&1 | tail -1
}

header
cores=$(nproc --all 2>/dev/null || echo 1)
if [ "$quick" = 1 ]; then
  reps=1 beam_reps=1 minutes=0.4 settings=(greedy-int8)
else
  reps=5 beam_reps=3 minutes=3 settings=(greedy-int8 beam5-int8 defaults)
fi
tc=(bench/transcribe_cpu.py --models tiny.en --dtypes int8 float32)
lf=(bench/longform_cpu.py --model tiny.en --minutes "$minutes" --repeats 1 --settings "${settings[@]}")

# 2 cores: the configuration the issue's Xeon figures came from
if has c2; then
step "jfk greedy, 2 cores" 0,1 60 "$PY" "${tc[@]}" --threads 2 --repeats "$reps" --out "$out/jfk_greedy_c2$tag.md"
step "jfk beam 5, 2 cores" 0,1 60 "$PY" "${tc[@]}" --threads 2 --repeats "$beam_reps" --beam-size 5 --out "$out/jfk_beam5_c2$tag.md"
step "long-form ${minutes} min, 2 cores" 0,1 180 "$PY" "${lf[@]}" --threads 2 --out "$out/longform_c2$tag.md"
fi
# 2 cores: our decoder's switches in turns in one process (bench/xeon_cpu.profile.py), with a cProfile
if has profile; then
step "decoder variants + cProfile, greedy int8, ${minutes} min, 2 cores" 0,1 90 "$PY" bench/xeon_cpu.profile.py --minutes "$minutes" --rounds 2
step "decoder variants, beam 5 int8, ${minutes} min, 2 cores" 0,1 100 "$PY" bench/xeon_cpu.profile.py --minutes "$minutes" --rounds 2 --setting beam5-int8 --no-profile
fi
# 2 cores: each engine's long-form wall time by phase (encoder, prefill, decoder steps; bench/longform_phases.py)
if has phases; then
for setting in greedy-int8 beam5-int8; do
  step "phases, $setting, ${minutes} min, 2 cores" 0,1 60 "$PY" bench/longform_phases.py --minutes "$minutes" --rounds 2 --setting "$setting"
done
fi
# 2 cores: the same with the pieces inside our decoder step and beam search timed (--parts)
if has parts; then
for setting in greedy-int8 beam5-int8; do
  step "phases and parts, $setting, ${minutes} min, 2 cores" 0,1 60 "$PY" bench/longform_phases.py --minutes "$minutes" --rounds 2 --setting "$setting" --parts
done
fi
# 2 cores: cross-attention in our C kernel against numpy's route: one layer alone (bench/attention_kernel.py),
# then in the same session in turns (--ab-attention), faster-whisper alongside
if has attention; then
step "attention kernel, one layer, 1 core" 0 30 "$PY" bench/attention_kernel.py
for setting in beam5-int8 greedy-int8; do
  step "cross-attention A/B (numpy, heads split), $setting, ${minutes} min, 2 cores" 0,1 120 "$PY" bench/longform_phases.py --minutes "$minutes" --rounds 2 --setting "$setting" --ab-attention --ab-split
done
fi
# 2 cores: batched long-form, ours against faster-whisper's BatchedInferencePipeline (needs .gpu/x4's Silero model)
if has batched; then
step "batched, batch 8, ${minutes} min, 2 cores" 0,1 150 "$PY" bench/batched_cpu.py --minutes "$minutes" --batch-size 8 --repeats 2 --no-sequential --out "$out/batched_c2$tag.md"
fi
if has kernels || has gemm; then
step "int8 products, one thread, each oneDNN route" 0 30 "$PY" bench/xeon_cpu.gemm.py
fi
if has kernels; then
for engine in mlx-audio-coreml faster-whisper; do
  [ "$quick" = 0 ] && step "kernels: $engine int8 beam 5, 2 cores" 0,1 20 bash -c 'kernels "$0" "$1" 5' "$engine" int8
  for dtype in int8 float32; do
    [ "$quick" = 1 ] && [ "$dtype" = float32 ] && continue
    step "kernels: $engine $dtype, 2 cores" 0,1 20 bash -c 'kernels "$0" "$1"' "$engine" "$dtype"
  done
done
fi

# 8 cores, if the machine has them and time is left
if has c8 && [ "$quick" = 0 ] && [ "$cores" -ge 8 ]; then
  step "jfk greedy, 8 cores" 0-7 45 "$PY" "${tc[@]}" --threads 8 --repeats "$reps" --out "$out/jfk_greedy_c8$tag.md"
  step "jfk beam 5, 8 cores" 0-7 45 "$PY" "${tc[@]}" --threads 8 --repeats "$beam_reps" --beam-size 5 --out "$out/jfk_beam5_c8$tag.md"
  step "long-form ${minutes} min, 8 cores" 0-7 90 "$PY" "${lf[@]}" --threads 8 --out "$out/longform_c8$tag.md"
else
  echo; echo "| 8 cores | skipped: quick=$quick, only=$only, $cores CPUs |"
fi
echo
echo "=== done in ${SECONDS}s; load average after: $(cat /proc/loadavg); tables in $out: $(ls "$out" | tr '\n' ' ')"
