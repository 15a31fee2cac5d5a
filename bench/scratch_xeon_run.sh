# scratch (not committed): session 9's third Xeon run: the team open for the whole decoding loop
source bench/xeon_cpu.env.sh
L() { cut -d' ' -f1-3 /proc/loadavg; }
ph() { timeout "$1" taskset -c 0,1 python3 bench/longform_phases.py --minutes 3 --rounds "$2" --setting "$3" "${@:4}" 2>&1 | grep -E "CPU:|round|\| (total|step|encode|prefill|generate|rest) |WER"; }
echo "=== greedy: ours / faster-whisper (load $(L))"; ph 200 4 greedy-int8
echo "=== beam5 (load $(L))"; ph 260 4 beam5-int8
echo "=== done (load $(L))"
