#!/usr/bin/env bash
# A real single-node Slurm cluster (Debian's Slurm 22.05 + MUNGE) for tests and local use.
#
#   bash scripts/slurm/cluster.sh install            # apt-get the packages (skips what is installed)
#   bash scripts/slurm/cluster.sh up     [STATE_DIR] # generate key + slurm.conf, start munged/slurmctld/slurmd
#   bash scripts/slurm/cluster.sh status [STATE_DIR] # sinfo/squeue; exit 0 when the cluster answers
#   bash scripts/slurm/cluster.sh down   [STATE_DIR] # cancel jobs, stop exactly the daemons `up` started
#   bash scripts/slurm/cluster.sh env    [STATE_DIR] # print the env.sh lines (SLURM_CONF=...)
#
# STATE_DIR defaults to $LANE_SLURM_DIR, else /tmp/voice-lane-slurm. Everything the cluster writes
# (munge key and socket, slurm.conf, env.sh, controller state, slurmd spool, logs, *.pid) lives there;
# nothing under /etc is read or changed. Clients find the cluster with `. STATE_DIR/env.sh`
# (SLURM_CONF=STATE_DIR/slurm.conf; the MUNGE socket path is in slurm.conf's AuthInfo).
#
# Knobs (environment): LANE_SLURM_PORT (first controller port to try, default 6817; slurmd uses the
# next one), LANE_SLURM_CPUS (node CPUs, default nproc; more than nproc oversubscribes the cores via
# SlurmdParameters=config_overrides), LANE_SLURM_MEM_MB (RealMemory, default MemTotal - 10% - 512 MB),
# LANE_SLURM_CRED_EXPIRE (AuthInfo cred_expire, default 10: a requeued job waits this long plus ~1 s
# before it can start again; Slurm's default is 120, it rejects values under 5),
# LANE_SLURM_UP_TIMEOUT (seconds to wait for the node to go idle, default 60).
# `up` prints "export SLURM_CONF=..." on stdout (eval-able) and a timing line on stderr.
# Daemons run as root (SlurmUser=root); as another user they are started and stopped with `sudo -n`.
set -euo pipefail

PKGS=(munge slurm-client slurmctld slurmd slurm-wlm-basic-plugins)

die() { echo "cluster.sh: $*" >&2; exit 1; }
log() { echo "cluster.sh: $*" >&2; }

as_root() {
    if [[ ${EUID} -eq 0 ]]; then "$@"; else sudo -n "$@"; fi
}

state_dir() {
    local d=${1:-${LANE_SLURM_DIR:-/tmp/voice-lane-slurm}}
    mkdir -p "$d"
    (cd "$d" && pwd -P)
}

now_ms() { date +%s%3N; }

# ---------------------------------------------------------------------------------------------- install
cmd_install() {
    local missing=() p
    for p in "${PKGS[@]}"; do
        # `dpkg -s` also succeeds for removed packages whose conffiles remain ("rc")
        [[ $(dpkg-query -W -f='${Status}' "$p" 2>/dev/null) == "install ok installed" ]] || missing+=("$p")
    done
    if [[ ${#missing[@]} -eq 0 ]]; then
        log "install: all packages present (${PKGS[*]})"
        return 0
    fi
    log "install: apt-get install ${missing[*]}"
    export DEBIAN_FRONTEND=noninteractive
    # Package lists may be empty on a fresh image; refresh only when the candidate is unknown.
    if ! apt-cache policy "${missing[@]}" 2>/dev/null | grep -q 'Candidate: [0-9]'; then
        as_root env DEBIAN_FRONTEND=noninteractive apt-get update -q </dev/null
    fi
    as_root env DEBIAN_FRONTEND=noninteractive apt-get install -y -q --no-install-recommends \
        -o DPkg::Lock::Timeout=300 -o Dpkg::Options::=--force-confdef -o Dpkg::Options::=--force-confold \
        "${missing[@]}" </dev/null
}

# ---------------------------------------------------------------------------------------------- helpers
# pid_alive PIDFILE NAME: the pid file names a live process whose command name is NAME (guards against
# pid reuse; /proc is readable for root-owned processes, `kill -0` is not when we are not root).
pid_alive() {
    local f=$1 name=$2 pid comm
    [[ -s $f ]] || return 1
    pid=$(tr -dc '0-9' <"$f")
    [[ -n $pid ]] && proc_live "$pid" || return 1
    comm=$(cat "/proc/$pid/comm" 2>/dev/null) || return 1
    [[ $comm == "$name" ]]
}

# proc_live PID: the process exists and is not a zombie. Where PID 1 does not reap orphans (some
# container/VM inits), a stopped daemon stays behind as <defunct> with its /proc entry.
proc_live() {
    local stat state
    stat=$(cat "/proc/$1/stat" 2>/dev/null) || return 1
    state=${stat##*) }
    state=${state%% *}
    [[ $state != Z && $state != X ]]
}

pid_of() { tr -dc '0-9' <"$1"; }

port_free() {
    local p=$1
    if command -v ss >/dev/null 2>&1; then
        [[ -z $(ss -Htln "sport = :$p" 2>/dev/null) ]]
    else
        if (exec 3<>"/dev/tcp/127.0.0.1/$p") 2>/dev/null; then return 1; fi
    fi
}

pick_ports() {
    local p=${LANE_SLURM_PORT:-6817} tries=0
    while ! { port_free "$p" && port_free $((p + 1)); }; do
        p=$((p + 2)); tries=$((tries + 1))
        [[ $tries -lt 50 ]] || die "no two free consecutive ports from ${LANE_SLURM_PORT:-6817}"
    done
    echo "$p"
}

node_cpus() { echo "${LANE_SLURM_CPUS:-$(nproc)}"; }

node_mem_mb() {
    if [[ -n ${LANE_SLURM_MEM_MB:-} ]]; then echo "$LANE_SLURM_MEM_MB"; return; fi
    local kb
    kb=$(awk '/^MemTotal:/ {print $2}' /proc/meminfo)
    # keep 10% + 512 MB for the OS and the daemons; slurmd drains the node if it registers less
    # memory than RealMemory, so err low
    echo $((kb * 9 / 10240 - 512))
}

write_conf() {
    local sd=$1 port=$2 host=$3 cpus=$4 mem=$5 first_id=$6 overrides="# CPUs = nproc"
    # more CPUs than the machine has: slurmd would mark the node INVALID without config_overrides
    [[ $cpus -gt $(nproc) ]] && overrides="SlurmdParameters=config_overrides"
    cat >"$sd/slurm.conf.new" <<EOF
# Generated by scripts/slurm/cluster.sh up — single-node test cluster, do not edit (regenerated on up).
ClusterName=lane
# slurmctld starts with clean state (-c) on every fresh start; job ids continue where the last run stopped
FirstJobId=${first_id}
SlurmctldHost=${host}(127.0.0.1)
SlurmctldPort=${port}
SlurmdPort=$((port + 1))
SlurmUser=root
SlurmdUser=root
AuthType=auth/munge
CredType=cred/munge
AuthInfo=socket=${sd}/munge/munge.socket,cred_expire=${LANE_SLURM_CRED_EXPIRE:-10}
StateSaveLocation=${sd}/ctld
SlurmdSpoolDir=${sd}/spool
SlurmctldPidFile=${sd}/slurmctld.pid
SlurmdPidFile=${sd}/slurmd.pid
SlurmctldLogFile=${sd}/log/slurmctld.log
SlurmdLogFile=${sd}/log/slurmd.log
SlurmctldDebug=info
SlurmdDebug=info
MpiDefault=none
# no cgroups: processes tracked through /proc parentage, no task containment
ProctrackType=proctrack/linuxproc
TaskPlugin=task/none
SelectType=select/cons_tres
SelectTypeParameters=CR_Core_Memory
# a job without --mem gets this much per CPU (all of RealMemory spread over the CPUs)
DefMemPerCPU=$((mem / cpus))
${overrides}
# memory: --mem is enforced by polling RSS every second and SIGKILLing the step (no cgroups); a batch
# step killed this way ends FAILED (Reason=JobLaunchFailure, ExitCode=0:9), never OUT_OF_MEMORY
JobAcctGatherType=jobacct_gather/linux
JobAcctGatherFrequency=task=1
JobAcctGatherParams=OverMemoryKill
# no slurmdbd: plain sacct says "accounting storage is disabled"; finished jobs stay in
# "scontrol show job" for MinJobAge seconds, and "sacct -c" reads the jobcomp.txt lines
AccountingStorageType=accounting_storage/none
JobCompType=jobcomp/filetxt
JobCompLoc=${sd}/log/jobcomp.txt
MinJobAge=3600
ReturnToService=2
# quick turnaround for tests. Time limits are still checked only every 30 s (hard-coded), so a
# --time=1 job ends TIMEOUT 60-90 s after it started (+KillWait if it ignores SIGTERM)
SchedulerType=sched/backfill
SchedulerParameters=batch_sched_delay=0,sched_interval=2,bf_interval=2,sched_min_interval=0
MessageTimeout=5
TCPTimeout=2
KillWait=2
OverTimeLimit=0
InactiveLimit=0
Waittime=0
SlurmctldTimeout=30
SlurmdTimeout=30
NodeName=${host} NodeAddr=127.0.0.1 CPUs=${cpus} RealMemory=${mem} State=UNKNOWN
PartitionName=debug Nodes=${host} Default=YES MaxTime=INFINITE State=UP
EOF
    mv -f "$sd/slurm.conf.new" "$sd/slurm.conf"
}

write_env() {
    local sd=$1
    cat >"$sd/env.sh.new" <<EOF
# source me: clients (sbatch, squeue, scontrol, scancel, sinfo) find the cluster through SLURM_CONF;
# the MUNGE socket is named in slurm.conf (AuthInfo=socket=...).
export SLURM_CONF=${sd}/slurm.conf
export LANE_SLURM_DIR=${sd}
EOF
    mv -f "$sd/env.sh.new" "$sd/env.sh"
}

# first_job_id STATE_DIR: past every job id this state dir has handed out (recorded by `down`, or
# seen in the job completion log after a crash)
first_job_id() {
    local sd=$1 rec=1 seen=0
    [[ -s $sd/next_job_id ]] && rec=$(tr -dc '0-9' <"$sd/next_job_id")
    if [[ -s $sd/log/jobcomp.txt ]]; then
        seen=$(grep -o '^JobId=[0-9]*' "$sd/log/jobcomp.txt" | cut -d= -f2 | sort -n | tail -n1)
    fi
    seen=$(( ${seen:-0} + 1 ))
    echo $(( ${rec:-1} > seen ? ${rec:-1} : seen ))
}

cluster_answers() {
    local sd=$1
    SLURM_CONF=$sd/slurm.conf timeout 10 sinfo -h -o %T >/dev/null 2>&1
}

# node_ready STATE_DIR SINCE: the node is usable and its slurmd registered at or after SINCE
# (YYYY-MM-DDTHH:MM:SS, local time like Slurm prints it). The controller restores the last node
# state from StateSaveLocation, so "idle" alone can be stale until the new slurmd registers.
node_ready() {
    local line state started
    line=$(SLURM_CONF=$1/slurm.conf timeout 10 scontrol show node -o 2>/dev/null | head -n1) || return 1
    state=$(grep -o ' State=[^ ]*' <<<"$line" | cut -d= -f2)
    started=$(grep -o ' SlurmdStartTime=[^ ]*' <<<"$line" | cut -d= -f2)
    echo "$state" >"$1/log/node_state"
    case ${state%%+*} in IDLE|MIXED|ALLOCATED) ;; *) return 1 ;; esac
    case $state in *DRAIN*|*NOT_RESPONDING*|*FAIL*|*INVALID*|*DOWN*) return 1 ;; esac
    [[ -n $started && ! $started < "$2" ]]
}

all_up() {
    local sd=$1
    pid_alive "$sd/munged.pid" munged && pid_alive "$sd/slurmctld.pid" slurmctld \
        && pid_alive "$sd/slurmd.pid" slurmd
}

# ---------------------------------------------------------------------------------------------- up
# fail_up STATE_DIR MESSAGE: stop whatever this `up` started (logs stay), then fail
fail_up() {
    log "$2"
    stop_all "$1" quiet
    exit 1
}

cmd_up() {
    local sd t0 port host cpus mem since deadline
    sd=$(state_dir "${1:-}")
    t0=$(now_ms)
    for b in munged slurmctld slurmd sinfo; do
        command -v "$b" >/dev/null 2>&1 || die "$b not found; run: bash $0 install"
    done
    if all_up "$sd" && cluster_answers "$sd"; then
        log "up: already running in $sd"
        echo "export SLURM_CONF=$sd/slurm.conf"
        return 0
    fi
    # something half up (a daemon died, a crashed run): clear it before starting afresh
    if compgen -G "$sd/*.pid" >/dev/null; then
        stop_all "$sd" quiet
    fi

    mkdir -p "$sd"/{ctld,spool,log,munge}
    # munged wants its key and socket directory owned by the user it runs as (root) and the socket
    # directory traversable by everyone (clients connect as themselves)
    chmod 0755 "$sd"
    as_root chown root:root "$sd/munge"
    as_root chmod 0755 "$sd/munge"
    if ! as_root test -s "$sd/munge/munge.key"; then
        as_root sh -c "umask 077; dd if=/dev/urandom of='$sd/munge/munge.key' bs=1024 count=1 status=none"
    fi
    as_root chown root:root "$sd/munge/munge.key"
    as_root chmod 0400 "$sd/munge/munge.key"

    port=$(pick_ports)
    host=$(hostname -s)
    cpus=$(node_cpus)
    mem=$(node_mem_mb)
    write_conf "$sd" "$port" "$host" "$cpus" "$mem" "$(first_job_id "$sd")"
    write_env "$sd"

    # munged checks that no other user can write along the paths of its key, socket and log; when we
    # are not root, STATE_DIR is ours, so --force turns those errors into warnings
    local force=()
    [[ ${EUID} -eq 0 ]] || force=(--force)
    as_root munged "${force[@]}" --socket="$sd/munge/munge.socket" --key-file="$sd/munge/munge.key" \
        --pid-file="$sd/munged.pid" --log-file="$sd/munge/munged.log" \
        --seed-file="$sd/munge/munged.seed" </dev/null >>"$sd/log/start.log" 2>&1 \
        || fail_up "$sd" "munged failed to start; see $sd/munge/munged.log and $sd/log/start.log"
    # both slurm daemons fork into the background themselves and write their pid files. -c: no job
    # or node state from a previous run (jobs it recorded as running after a crash would hold the
    # node forever; `down` cancels every job anyway)
    as_root slurmctld -c -f "$sd/slurm.conf" </dev/null >>"$sd/log/start.log" 2>&1 \
        || fail_up "$sd" "slurmctld failed to start; see $sd/log/slurmctld.log"
    since=$(date +%Y-%m-%dT%H:%M:%S)
    as_root slurmd -f "$sd/slurm.conf" </dev/null >>"$sd/log/start.log" 2>&1 \
        || fail_up "$sd" "slurmd failed to start; see $sd/log/slurmd.log"

    deadline=$(( $(date +%s) + ${LANE_SLURM_UP_TIMEOUT:-60} ))
    until node_ready "$sd" "$since"; do
        for d in munged slurmctld slurmd; do
            pid_alive "$sd/$d.pid" "$d" || fail_up "$sd" "$d is not running; see $sd/log/, $sd/munge/munged.log"
        done
        [[ $(date +%s) -lt $deadline ]] \
            || fail_up "$sd" "node not ready after ${LANE_SLURM_UP_TIMEOUT:-60}s (state '$(cat "$sd/log/node_state" 2>/dev/null)'); logs in $sd/log/"
        sleep 0.2
    done
    local t1
    t1=$(now_ms)
    log "up: slurm cluster '$host' idle in $(( (t1 - t0) / 1000 )).$(printf '%03d' $(( (t1 - t0) % 1000 )))s (ports $port/$((port + 1)), $cpus CPUs, ${mem} MB; state $sd)"
    echo "export SLURM_CONF=$sd/slurm.conf"
}

# ---------------------------------------------------------------------------------------------- down
# descendants PID...: every process below the given ones (one pass over /proc/*/stat)
descendants() {
    local -A kids=()
    local stat line rest pid ppid queue=("$@") p
    for stat in /proc/[0-9]*/stat; do
        { line=$(<"$stat"); } 2>/dev/null || continue
        pid=${line%% *}
        rest=${line##*) }            # after "(comm) ", comm may hold spaces or parens
        rest=${rest#* }              # drop the state letter
        ppid=${rest%% *}
        kids[$ppid]+="$pid "
    done
    while [[ ${#queue[@]} -gt 0 ]]; do
        p=${queue[0]}; queue=("${queue[@]:1}")
        for pid in ${kids[$p]:-}; do
            echo "$pid"
            queue+=("$pid")
        done
    done
}

# slurmstepd processes of this cluster: the ones listening on unix sockets in our slurmd spool dir
our_stepds() {
    local sd=$1
    command -v ss >/dev/null 2>&1 || return 0
    as_root ss -Hxlp 2>/dev/null | awk -v dir="$sd/spool/" 'index($0, dir) {print}' \
        | grep -o 'pid=[0-9]*' | cut -d= -f2 | sort -u
}

kill_pids() {  # kill_pids SIGNAL PID...
    local sig=$1; shift
    [[ $# -gt 0 ]] || return 0
    as_root kill "-$sig" "$@" 2>/dev/null || true
}

wait_gone() {  # wait_gone SECONDS PID...
    local until=$(( $(now_ms) + $1 * 1000 )) p left; shift
    while [[ $(now_ms) -lt $until ]]; do
        left=0
        for p in "$@"; do proc_live "$p" && left=1; done
        [[ $left -eq 0 ]] && return 0
        sleep 0.1
    done
    return 1
}

stop_all() {
    local sd=$1 quiet=${2:-} pids=() p d jobs
    # 1. jobs: cancel everything this controller knows, give it KillWait to signal them
    if pid_alive "$sd/slurmctld.pid" slurmctld; then
        SLURM_CONF=$sd/slurm.conf timeout 10 scontrol show config 2>/dev/null \
            | awk '$1 == "NEXT_JOB_ID" {print $3}' >"$sd/next_job_id.new" || true
        if [[ -s $sd/next_job_id.new ]]; then mv -f "$sd/next_job_id.new" "$sd/next_job_id"; else rm -f "$sd/next_job_id.new"; fi
        jobs=$(SLURM_CONF=$sd/slurm.conf timeout 10 squeue -h -o %i -t PD,R,CG,S,CF,RQ 2>/dev/null || true)
        if [[ -n $jobs ]]; then
            # shellcheck disable=SC2086  # one job id per word
            as_root env SLURM_CONF="$sd/slurm.conf" timeout 10 scancel $jobs 2>/dev/null || true
            # without slurmd the jobs stay COMPLETING; step 2 deals with their processes
            if pid_alive "$sd/slurmd.pid" slurmd; then
                for _ in $(seq 1 50); do
                    [[ -z $(SLURM_CONF=$sd/slurm.conf timeout 5 squeue -h -o %i -t R,CG 2>/dev/null || true) ]] && break
                    sleep 0.2
                done
            fi
        fi
    fi
    # 2. any slurmstepd still alive (and its job processes): slurmd's death does not end them
    local stepds=() daemons=()
    mapfile -t stepds < <(our_stepds "$sd")
    # 3. the daemons, by the pids they recorded (and slurmctld's helper child, slurmscriptd)
    for d in slurmd slurmctld munged; do
        if pid_alive "$sd/$d.pid" "$d"; then
            daemons+=("$(pid_of "$sd/$d.pid")")
        fi
    done
    if [[ ${#stepds[@]} -gt 0 || ${#daemons[@]} -gt 0 ]]; then
        pids=("${stepds[@]}" "${daemons[@]}")
        mapfile -t -O "${#pids[@]}" pids < <(descendants "${pids[@]}")
    fi
    if [[ ${#pids[@]} -gt 0 ]]; then
        kill_pids TERM "${pids[@]}"
        # slurmstepd blocks SIGTERM (it expects slurmd's RPCs); its job processes got TERM above
        [[ ${#stepds[@]} -gt 0 ]] && kill_pids KILL "${stepds[@]}"
        if ! wait_gone 10 "${pids[@]}"; then
            [[ -n $quiet ]] || log "down: SIGKILL to survivors"
            kill_pids KILL "${pids[@]}"
            wait_gone 5 "${pids[@]}" || log "down: still alive after SIGKILL: ${pids[*]}"
        fi
    fi
    for d in slurmd slurmctld munged; do
        as_root rm -f "$sd/$d.pid"
    done
    [[ -n $quiet ]] || log "down: stopped ${#pids[@]} process(es) in $sd"
}

cmd_down() {
    local sd=${1:-${LANE_SLURM_DIR:-/tmp/voice-lane-slurm}}
    [[ -d $sd ]] || { log "down: no state dir $sd"; return 0; }
    sd=$(cd "$sd" && pwd -P)
    stop_all "$sd"
}

# ---------------------------------------------------------------------------------------------- status
cmd_status() {
    local sd=${1:-${LANE_SLURM_DIR:-/tmp/voice-lane-slurm}} d rc=0
    [[ -f $sd/slurm.conf ]] || { echo "no cluster in $sd"; return 1; }
    sd=$(cd "$sd" && pwd -P)
    for d in munged slurmctld slurmd; do
        if pid_alive "$sd/$d.pid" "$d"; then
            echo "$d: running (pid $(pid_of "$sd/$d.pid"))"
        else
            echo "$d: not running"; rc=1
        fi
    done
    export SLURM_CONF=$sd/slurm.conf
    echo "SLURM_CONF=$SLURM_CONF"
    [[ $rc -eq 0 ]] || return "$rc"
    timeout 10 sinfo || rc=1
    timeout 10 squeue || rc=1
    return "$rc"
}

cmd_env() {
    local sd=${1:-${LANE_SLURM_DIR:-/tmp/voice-lane-slurm}}
    [[ -f $sd/env.sh ]] || die "no env.sh in $sd (run up first)"
    cat "$sd/env.sh"
}

main() {
    local cmd=${1:-}
    [[ $# -gt 0 ]] && shift
    case $cmd in
        install) cmd_install ;;
        up) cmd_up "$@" ;;
        down) cmd_down "$@" ;;
        status) cmd_status "$@" ;;
        env) cmd_env "$@" ;;
        *) awk 'NR > 1 && /^#/ {sub(/^# ?/, ""); print; next} NR > 1 {exit}' "$0" >&2; exit 2 ;;
    esac
}

main "$@"
