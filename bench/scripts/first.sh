#!/bin/sh
# Runs a command ahead of everything else on a shared machine, for figures
# (BENCHMARKS.md, "Measured ahead of the machine's other work"):
#
#   setsid bench/scripts/first.sh ./target/release/collab-bench load ...
#
# Linux groups processes by session (autogroup, when
# /proc/sys/kernel/sched_autogroup_enabled is 1): the scheduler shares a
# core between sessions first, and a process's nice counts only inside its
# own session. So `nice -n -20` alone does not put a bench ahead of another
# session's build on the same core; the session's own nice does
# (/proc/self/autogroup). Run it under setsid, so that this session is the
# bench's alone. Needs root (or CAP_SYS_NICE) for the negative nice; without
# it the command runs as it would have.
echo -20 > /proc/self/autogroup 2>/dev/null || echo "first.sh: cannot raise this session (autogroup)" >&2
if nice -n -20 true 2>/dev/null; then
  exec nice -n -20 "$@"
fi
echo "first.sh: cannot raise nice" >&2
exec "$@"
