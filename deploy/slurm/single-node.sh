#!/usr/bin/env bash
# A single-node Slurm cluster on this machine, from Debian packages, for `make demo-slurm`
# and CI: munge + slurmctld + slurmd, one node with this machine's CPUs and memory, one
# partition. Idempotent: rerunning installs nothing new, rewrites slurm.conf only when it
# would change, and starts only the daemons that are not running.
#
#   sudo deploy/slurm/single-node.sh          # install, configure, start, wait until idle
#   sudo deploy/slurm/single-node.sh status   # daemons and sinfo
#   sudo deploy/slurm/single-node.sh stop     # stop the daemons this script started
#
# It must run as root (apt-get, /etc/slurm, the daemons). Without systemd (containers, CI
# runners) the daemons are started directly; their pid files tell later runs they are up.
# Settings a shared HPC cluster would never use, chosen because they work in an unprivileged
# container: SlurmUser=root, proctrack/linuxproc and task/none (no cgroup hierarchy to
# delegate), no accounting database (Toil falls back to scontrol when sacct has nothing).
set -euo pipefail

ACTION=${1:-start}
CLUSTER=${SLURM_CLUSTER_NAME:-glacier}
PARTITION=${SLURM_PARTITION:-demo}
CONF_DIR=/etc/slurm
CONF=$CONF_DIR/slurm.conf
STATE=/var/lib/slurm
LOGS=/var/log/slurm
RUN_DIR=/run/slurm
CTLD_PID=$RUN_DIR/slurmctld.pid
SLURMD_PID=$RUN_DIR/slurmd.pid
MUNGE_KEY=/etc/munge/munge.key
MUNGE_PID=/run/munge/munged.pid
PACKAGES=(munge slurmctld slurmd slurm-client)
WAIT_S=${SLURM_WAIT_S:-60}

say() { echo "slurm-single-node: $*" >&2; }
die() { say "error: $*"; exit 1; }

alive() {  # alive PIDFILE: the process named in the pid file runs
    local pid
    pid=$(cat "$1" 2>/dev/null) && [[ -n $pid ]] && kill -0 "$pid" 2>/dev/null
}

install_packages() {
    local missing=()
    for p in "${PACKAGES[@]}"; do
        dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q 'install ok installed' || missing+=("$p")
    done
    if ((${#missing[@]})); then
        say "installing ${missing[*]}"
        export DEBIAN_FRONTEND=noninteractive
        # Another apt-get (CI set-up, a colleague) may hold the dpkg lock: wait for it.
        apt-get -o DPkg::Lock::Timeout=600 update -qq
        # policy-rc.d 101: the packages' maintainer scripts must not try to start services
        # (no init system here); this script starts them below.
        local policy=/usr/sbin/policy-rc.d created_policy=0
        if [[ ! -e $policy ]]; then printf '#!/bin/sh\nexit 101\n' >"$policy"; chmod +x "$policy"; created_policy=1; fi
        apt-get -o DPkg::Lock::Timeout=600 install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
        if ((created_policy)); then rm -f "$policy"; fi
    fi
}

start_munge() {
    if [[ ! -s $MUNGE_KEY ]]; then
        say "writing a munge key"
        install -d -m 0700 -o munge -g munge /etc/munge
        (umask 077; dd if=/dev/urandom bs=1 count=1024 status=none >"$MUNGE_KEY")
        chown munge:munge "$MUNGE_KEY"
        chmod 0400 "$MUNGE_KEY"
    fi
    install -d -m 0755 -o munge -g munge /run/munge
    install -d -m 0700 -o munge -g munge /var/lib/munge /var/log/munge
    # An earlier munged run as root leaves root-owned files the munge user cannot reopen.
    chown -R munge:munge /etc/munge /var/lib/munge /var/log/munge /run/munge
    if ! munge -n 2>/dev/null | unmunge >/dev/null 2>&1; then
        say "starting munged"
        # As the munge user, which owns the key and its directories (Debian's service does
        # the same); --force: munged refuses to start on harmless permission warnings that
        # container file systems cause (e.g. a group-writable /var/log).
        runuser -u munge -- munged --force --pid-file="$MUNGE_PID" ||
            die "munged did not start (see /var/log/munge/munged.log)"
        for _ in $(seq 1 20); do munge -n 2>/dev/null | unmunge >/dev/null 2>&1 && break; sleep 0.25; done
        munge -n | unmunge >/dev/null || die "munged does not answer (see /var/log/munge/munged.log)"
    fi
}

write_conf() {
    local host node cpus mem
    host=$(hostname -s)
    # slurmd -C prints this node's real layout; a node that declares more CPUs or memory
    # than it has is set DRAIN/INVALID by slurmctld.
    node=$(slurmd -C | head -n 1)
    cpus=$(sed -n 's/.*CPUs=\([0-9]*\).*/\1/p' <<<"$node")
    mem=$(sed -n 's/.*RealMemory=\([0-9]*\).*/\1/p' <<<"$node")
    [[ -n $cpus && -n $mem ]] || die "cannot read CPUs and RealMemory from 'slurmd -C': $node"
    install -d -m 0755 "$CONF_DIR" "$RUN_DIR" "$LOGS" "$STATE/slurmctld" "$STATE/slurmd"
    local new
    new=$(mktemp)
    cat >"$new" <<CONF
# Written by deploy/slurm/single-node.sh (glacier-velocity): one node, one partition.
ClusterName=$CLUSTER
SlurmctldHost=$host(127.0.0.1)
SlurmUser=root
SlurmdUser=root
AuthType=auth/munge
CredType=cred/munge
MpiDefault=none
ProctrackType=proctrack/linuxproc
TaskPlugin=task/none
SelectType=select/cons_tres
SelectTypeParameters=CR_Core_Memory
JobAcctGatherType=jobacct_gather/none
AccountingStorageType=accounting_storage/none
JobCompType=jobcomp/none
ReturnToService=2
StateSaveLocation=$STATE/slurmctld
SlurmdSpoolDir=$STATE/slurmd
SlurmctldPidFile=$CTLD_PID
SlurmdPidFile=$SLURMD_PID
SlurmctldLogFile=$LOGS/slurmctld.log
SlurmdLogFile=$LOGS/slurmd.log
SlurmctldPort=6817
SlurmdPort=6818
# Toil polls often; keep finished jobs visible to scontrol for a while.
MinJobAge=600
$node NodeAddr=127.0.0.1 State=UNKNOWN
PartitionName=$PARTITION Nodes=$host Default=YES MaxTime=INFINITE State=UP
CONF
    # slurmd -C prints "NodeName=host CPUs=..."; the line above keeps it whole, so the node
    # declares exactly what slurmd finds. UpTime is informational and not a slurm.conf key.
    sed -i -E '/^NodeName=/ s/ UpTime=[^ ]*//' "$new"
    if [[ -f $CONF ]] && cmp -s "$new" "$CONF"; then
        rm -f "$new"
        return 1
    fi
    say "writing $CONF ($cpus CPUs, $mem MB)"
    install -m 0644 "$new" "$CONF"
    rm -f "$new"
    return 0
}

stop_daemon() {  # stop_daemon NAME PIDFILE
    if alive "$2"; then
        say "stopping $1"
        kill "$(cat "$2")" 2>/dev/null || true
        for _ in $(seq 1 40); do alive "$2" || break; sleep 0.25; done
        alive "$2" && die "$1 (pid $(cat "$2")) did not stop"
    fi
    rm -f "$2"
}

start_slurm() {
    local changed=$1
    if ((changed)); then
        stop_daemon slurmd "$SLURMD_PID"
        stop_daemon slurmctld "$CTLD_PID"
    fi
    if ! alive "$CTLD_PID"; then say "starting slurmctld"; slurmctld; fi
    if ! alive "$SLURMD_PID"; then say "starting slurmd"; slurmd; fi
    local state=""
    for _ in $(seq 1 $((WAIT_S * 2))); do
        if scontrol ping >/dev/null 2>&1; then
            state=$(sinfo -h -N -o '%T' 2>/dev/null | head -n 1)
            [[ $state == idle* || $state == mixed* || $state == allocated* ]] && break
            # A node left DOWN/DRAIN by an earlier configuration comes back here.
            [[ $state == down* || $state == drain* ]] && scontrol update NodeName="$(hostname -s)" State=RESUME >/dev/null 2>&1 || true
        fi
        sleep 0.5
    done
    [[ $state == idle* || $state == mixed* || $state == allocated* ]] ||
        die "node not ready after ${WAIT_S}s (state '${state:-no answer}'); see $LOGS/slurmctld.log and $LOGS/slurmd.log"
    say "cluster '$CLUSTER' up: partition $PARTITION, node $(hostname -s) $state"
}

status() {
    for d in "munged $MUNGE_PID" "slurmctld $CTLD_PID" "slurmd $SLURMD_PID"; do
        set -- $d
        if alive "$2"; then echo "$1: running (pid $(cat "$2"))"; else echo "$1: not running"; fi
    done
    sinfo 2>&1 || true
}

[[ $(id -u) == 0 ]] || die "run as root (apt-get, /etc/slurm and the daemons need it)"
case $ACTION in
    start)
        install_packages
        start_munge
        changed=0
        write_conf && changed=1
        start_slurm "$changed"
        ;;
    status) status ;;
    stop)
        stop_daemon slurmd "$SLURMD_PID"
        stop_daemon slurmctld "$CTLD_PID"
        stop_daemon munged "$MUNGE_PID"
        ;;
    *) die "unknown action '$ACTION' (start, status or stop)" ;;
esac
