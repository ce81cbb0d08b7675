#!/bin/bash
# Stand-in for ssh as Open MPI's launch agent (--mca plm_rsh_agent) on the local test hosts made by
# cluster/netns-hosts.sh: "<agent> [ssh options] HOST COMMAND…" runs COMMAND inside HOST's network
# namespace, in its own UTS namespace whose hostname is HOST (Open MPI's shared-memory segments are
# named after the hostname, so two "hosts" must not share one).
while [[ "$1" == -* ]]; do shift; done
host="$1"; shift
prefix=${DISTTRAIN_NETNS_PREFIX:-dth}
case "$host" in
  ${prefix}[0-9]*) ns=$host ;;
  10.77.0.*) ns=${prefix}${host##*.} ;;
  *) echo "netns-agent: unknown host '$host'" >&2; exit 255 ;;
esac
exec ip netns exec "$ns" unshare --uts /bin/sh -c "hostname $ns && $*"
