# What a killed run leaves behind, found and removed by the next run (source this file; bash).
#
# A suite's tag is PREFIX<pid> (ted1234, tedsoak1234, mesh1234): its namespaces are
# TAG-*, its veths TAG<letter>…, and run_mark PREFIX records the suite's start time in
# /run/ted-tests/TAG, so a pid reused by another process is not taken for the run (the
# Swift tests' TestRuns keeps the same markers for tedvici and tedtest). reap_dead_runs
# PREFIX removes, for the runs of PREFIX whose process is gone and only those, the
# processes inside their namespaces (by pid), the namespaces, veths left in this
# namespace, and the marker. Work directories stay, as after a run that ends: their logs
# are what tells why a run was killed.
#
# Long-lived children die with the suite whatever kills it: start them as
# "${OWNED[@]}" CMD... & from the suite's own shell (not a subshell: the death signal
# comes when the parent ends). setpriv execs CMD, so $! is still CMD's pid.

TED_RUNS=${TED_RUNS:-/run/ted-tests}
OWNED=(setpriv --pdeathsig KILL --)

# run_start_time PID: field 22 of /proc/PID/stat (start time, clock ticks after boot);
# fails when PID is gone or a zombie.
run_start_time() {
  local stat fields
  stat=$(cat "/proc/$1/stat" 2>/dev/null) || return 1
  read -r -a fields <<< "${stat##*) }"
  [ "${fields[0]}" = Z ] || [ "${fields[0]}" = X ] && return 1
  echo "${fields[19]}"
}

# run_alive PREFIX PID: PID runs and is the run that marked PREFIX PID (without a marker:
# PID runs).
run_alive() {
  local start
  start=$(run_start_time "$2") || return 1
  [ -f "$TED_RUNS/$1$2" ] || return 0
  [ "$(cat "$TED_RUNS/$1$2" 2>/dev/null)" = "$start" ]
}

# reap_dead_runs PREFIX: what dead runs of PREFIX left, removed.
reap_dead_runs() {
  local prefix=$1 name pid inside marker
  local -a names links
  mapfile -t names < <(ip netns list 2>/dev/null | cut -d' ' -f1 | head -10000)
  for name in "${names[@]}"; do
    [[ $name =~ ^$prefix([0-9]+)- ]] || continue
    pid=${BASH_REMATCH[1]}
    run_alive "$prefix" "$pid" && continue
    echo "reap: $name, left by $prefix$pid (gone)" >&2
    for inside in $(ip netns pids "$name" 2>/dev/null); do kill -9 "$inside" 2>/dev/null; done
    ip netns del "$name" 2>/dev/null
  done
  mapfile -t links < <(ip -o link show 2>/dev/null | cut -d' ' -f2 | sed 's/[@:].*//' | head -10000)
  for name in "${links[@]}"; do
    [[ $name =~ ^$prefix([0-9]+)[a-zA-Z] ]] || continue
    run_alive "$prefix" "${BASH_REMATCH[1]}" && continue
    echo "reap: link $name, left by $prefix${BASH_REMATCH[1]} (gone)" >&2
    ip link del "$name" 2>/dev/null
  done
  for marker in "$TED_RUNS/$prefix"*; do
    [ -f "$marker" ] || continue
    [[ ${marker##*/} =~ ^$prefix([0-9]+)$ ]] || continue
    run_alive "$prefix" "${BASH_REMATCH[1]}" || rm -f "$marker"
  done
}

# run_mark PREFIX: reaps what dead runs of PREFIX left, then marks this run ($$) as PREFIX$$.
run_mark() {
  reap_dead_runs "$1"
  mkdir -p "$TED_RUNS"
  run_start_time $$ > "$TED_RUNS/$1$$"
}
