#!/usr/bin/env bash
# Two local "hosts" for trying multi-host MPI on one machine (root): network namespaces dth1 and dth2
# joined by a veth pair, addresses 10.77.0.1 and 10.77.0.2, reachable only from each other.
#   cluster/netns-hosts.sh up [RATE]     RATE (e.g. 1gbit) shapes both ends with tc
#   cluster/netns-hosts.sh down
#   cluster/netns-hosts.sh mpirun ARGS…  mpirun started inside dth1 with the agent and TCP between hosts,
#                                        e.g. … mpirun -np 2 --host dth1,dth2 .build/release/disttrain train …
set -euo pipefail
prefix=${DISTTRAIN_NETNS_PREFIX:-dth}
here=$(cd "$(dirname "$0")" && pwd)
case "${1:?up, down or mpirun}" in
up)
  ip netns add ${prefix}1; ip netns add ${prefix}2
  ip link add veth-${prefix}1 netns ${prefix}1 type veth peer name veth-${prefix}2 netns ${prefix}2
  ip -n ${prefix}1 addr add 10.77.0.1/24 dev veth-${prefix}1
  ip -n ${prefix}2 addr add 10.77.0.2/24 dev veth-${prefix}2
  for n in 1 2; do
    ip -n ${prefix}$n link set lo up; ip -n ${prefix}$n link set veth-${prefix}$n up
    if [ -n "${2:-}" ]; then
      ip netns exec ${prefix}$n tc qdisc add dev veth-${prefix}$n root tbf rate "$2" burst 256kb latency 50ms
    fi
  done
  ;;
down)
  ip netns del ${prefix}1 2>/dev/null || true; ip netns del ${prefix}2 2>/dev/null || true
  ;;
mpirun)
  shift
  export OMPI_ALLOW_RUN_AS_ROOT=1 OMPI_ALLOW_RUN_AS_ROOT_CONFIRM=1
  mca="--mca plm_rsh_agent $here/netns-agent.sh --mca plm_rsh_no_tree_spawn 1 --mca oob_tcp_if_include 10.77.0.0/24 --mca btl_tcp_if_include 10.77.0.0/24"
  exec ip netns exec ${prefix}1 unshare --uts /bin/sh -c "hostname ${prefix}1 && mpirun $mca $(printf '%q ' "$@")"
  ;;
*) echo "usage: $0 up [RATE] | down | mpirun ARGS…" >&2; exit 2 ;;
esac
