#!/bin/sh
# Debian's chromium inside a network namespace, for playwright-core's executablePath
# (playwright appends its own flags and talks to the browser over fds 3 and 4, which
# `ip netns exec` passes through; it execs, so the pid playwright holds is chromium's).
#   chromium-in-ns.sh NS [chromium args...]   or   MB_CHROMIUM_NETNS=NS chromium-in-ns.sh [args...]
# (playwright cannot put an argument before its own, hence the environment variable.)
set -eu
if [ -n "${MB_CHROMIUM_NETNS:-}" ]; then ns=$MB_CHROMIUM_NETNS
elif [ $# -gt 0 ] && [ "${1#-}" = "$1" ]; then ns=$1; shift
else echo "chromium-in-ns.sh: no namespace (first argument or MB_CHROMIUM_NETNS)" >&2; exit 2
fi
exec ip netns exec "$ns" "${MB_CHROMIUM:-/usr/bin/chromium}" "$@"
