# Helpers the benchmark scripts source: timing a command and taking a median.
# seconds CMD...  runs CMD (output discarded) and prints its wall time in seconds;
# median          prints the median of the numbers on stdin, one per line.
median() { sort -n | awk '{a[NR]=$1} END {print a[int((NR+1)/2)]}'; }
seconds() {
  local t0 t1
  t0=$(date +%s.%N)
  "$@" >/dev/null 2>&1 || echo "bench: failed: $*" >&2
  t1=$(date +%s.%N)
  echo "$t1 - $t0" | bc -l
}
