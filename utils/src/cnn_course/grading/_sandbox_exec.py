"""Last step before a sandboxed program starts: set its limits and its channel, then exec it.

:mod:`cnn_course.grading.sandbox` runs this file as ``python -I -S _sandbox_exec.py SPEC
PROGRAM ARG...`` inside the sandbox (after the namespaces exist, so that the process limit
counts the sandbox's own processes only). ``SPEC`` is JSON::

    {"rlimits": {"RLIMIT_AS": 8589934592, ...}, "channel": [READ_FD, WRITE_FD]}

It lowers each resource limit (soft and hard, so the program cannot raise it again), puts
the channel's pipe ends on file descriptors 3 (requests in) and 4 (replies out), closes
the originals and replaces itself with ``PROGRAM``. Standard library only: it runs before
the program's own environment is set up, with site-packages switched off (``-S``).
"""

from __future__ import annotations

import fcntl
import json
import os
import resource
import sys

CHANNEL_IN_FD = 3
CHANNEL_OUT_FD = 4
# Above the fds the child receives (0-4), so that moving the pipe ends never overwrites one.
_PARKING_FD = 10


def apply_limits(rlimits):
    """Lower each named resource limit to ``value`` (soft and hard).

    A limit the process already has below ``value`` is kept: limits only go down.
    """
    for name, value in rlimits.items():
        which = getattr(resource, name)
        _soft, hard = resource.getrlimit(which)
        if hard != resource.RLIM_INFINITY:
            value = min(value, hard)
        try:
            resource.setrlimit(which, (value, value))
        except (ValueError, OSError):
            # Only Linux is sandboxed; macOS does not support every limit (e.g. RLIMIT_AS),
            # and there the caller accepted an unsandboxed run anyway.
            if sys.platform.startswith("linux"):
                raise


def move_channel(read_fd, write_fd):
    """Put the channel's pipe ends on fds 3 (in) and 4 (out), inheritable, and close the originals."""
    parked_read = fcntl.fcntl(read_fd, fcntl.F_DUPFD, _PARKING_FD)
    parked_write = fcntl.fcntl(write_fd, fcntl.F_DUPFD, _PARKING_FD)
    os.dup2(parked_read, CHANNEL_IN_FD)
    os.dup2(parked_write, CHANNEL_OUT_FD)
    for fd in {parked_read, parked_write, read_fd, write_fd} - {CHANNEL_IN_FD, CHANNEL_OUT_FD}:
        os.close(fd)


def main(argv):
    if len(argv) < 3:
        sys.stderr.write("usage: _sandbox_exec.py SPEC PROGRAM [ARG...]\n")
        return 2
    spec = json.loads(argv[1])
    apply_limits(spec["rlimits"])
    move_channel(*spec["channel"])
    program = argv[2:]
    try:
        os.execvp(program[0], program)
    except OSError as error:
        sys.stderr.write(f"sandbox: cannot start {program[0]!r}: {error.strerror}\n")
        return 127


if __name__ == "__main__":
    sys.exit(main(sys.argv))
