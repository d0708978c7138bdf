"""How a command ends: the exit codes every command uses, and `fail()` for the one sentence a
user reads when an expected failure stops it (no traceback).

| code | meaning                                                   |
|------|-----------------------------------------------------------|
| 0    | done                                                      |
| 1    | failed; stderr says why and what to do                    |
| 130  | stopped by the user (Ctrl+C); what was done so far is kept |
| 141  | the reader of stdout left while the command wrote (`| head`) |
"""

from __future__ import annotations

import sys

from reflectchat.untrusted import visible

EXIT_OK, EXIT_FAILED, EXIT_CANCELLED = 0, 1, 130
EXIT_PIPE_CLOSED = 141  # 128 + SIGPIPE, as a Unix tool whose reader left exits


def fail(message: object) -> int:
    """Say why on stderr and return the failure exit code. The message may quote outside text
    (a server's error, a path), so it is shown literally: control characters visible."""
    print(f"reflectchat: {visible(str(message))}", file=sys.stderr)
    return EXIT_FAILED
