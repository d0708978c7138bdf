"""Every command ends the same way when the reader of its output leaves (`| head -1`): quietly,
with 141 (128 + SIGPIPE, as other Unix tools), never a traceback or 1, the code for a failure
(Rich's console exited 1, and `sessions` called it a failed write). Nothing starts stdout with
a blank line."""

from __future__ import annotations

import subprocess
import sys

import pytest

from reflectchat.cli.output import EXIT_PIPE_CLOSED


@pytest.mark.parametrize("command", [
    ["models"], ["hw"], ["sessions", "list"], ["sessions", "show", "1"],
    ["ask", "--demo", "Solve the equation: 2x^2 + 5x - 3 = 0"],
], ids=" ".join)
def test_a_reader_that_leaves_ends_every_command_with_141(command):
    subprocess.run([sys.executable, "-m", "reflectchat", "ask", "--demo", "q"],
                   capture_output=True, check=True, timeout=120)  # session 1, for `show`
    child = subprocess.Popen([sys.executable, "-m", "reflectchat", *command],
                             stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    assert child.stdout is not None and child.stderr is not None
    child.stdout.close()  # gone before the command writes its first line
    err = child.stderr.read().decode()
    assert child.wait(timeout=120) == EXIT_PIPE_CLOSED, err
    assert "Traceback" not in err and "Broken pipe" not in err


def test_asks_output_starts_with_its_first_label_not_a_blank_line():
    done = subprocess.run([sys.executable, "-m", "reflectchat", "ask", "--demo", "--no-save",
                           "Solve the equation: 2x^2 + 5x - 3 = 0"], capture_output=True,
                          text=True, timeout=120)
    assert done.stdout.splitlines()[0] == "── thinking ──"
