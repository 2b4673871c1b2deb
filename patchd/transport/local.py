"""The ``local`` transport: the agent in a subprocess on this machine.

NOTE: the subprocess is started through the very bootstrap SSH hosts run (the zip arrives
on stdin), so local runs and tests exercise exactly the code shipped to remote hosts.
"""

from __future__ import annotations

import contextlib
import subprocess
import sys

from patchd.agent.package import bootstrap_argv
from patchd.errors import TransportError
from patchd.transport.interface import AgentSession, StderrTail, Transport

_EXIT_WAIT = 5.0


class ProcessPipe:
    """An :class:`~patchd.transport.interface.AgentPipe` over a subprocess's stdin/stdout."""

    def __init__(self, process: subprocess.Popen[bytes]) -> None:
        assert process.stdin and process.stdout and process.stderr
        self._process = process
        self._stdin = process.stdin
        self._stdout = process.stdout
        self._stderr = StderrTail(process.stderr.read1)

    def write(self, data: bytes) -> None:
        """Send ``data`` to the agent's stdin."""
        self._stdin.write(data)
        self._stdin.flush()

    def readline(self) -> bytes:
        """Read one line of the agent's stdout."""
        return self._stdout.readline()

    def close(self) -> None:
        """Close the agent's stdin so it ends; kill it if it does not within a few seconds."""
        if self._process.returncode is not None:
            return
        with contextlib.suppress(OSError):
            self._stdin.close()
        try:
            self._process.wait(_EXIT_WAIT)
        except subprocess.TimeoutExpired:
            self._process.kill()
            self._process.wait()
        self._stdout.close()

    def exit_reason(self) -> str:
        """The agent's exit status and last stderr line, if it has ended."""
        try:
            code = self._process.wait(1.0)
        except subprocess.TimeoutExpired:
            return "agent still running"
        last = self._stderr.last()
        return f"agent exited with status {code}" + (f": {last}" if last else "")


class LocalTransport(Transport):
    """Runs the agent as a child process of the controller, with ``python`` (default: ours)."""

    def __init__(self, host: str, *, python: str | None = None) -> None:
        self.host = host
        self.python = python or sys.executable

    def open(self) -> AgentSession:
        """Start the agent subprocess and return its checked session."""
        try:
            process = subprocess.Popen(
                bootstrap_argv(self.python),
                stdin=subprocess.PIPE,
                stdout=subprocess.PIPE,
                stderr=subprocess.PIPE,
                cwd="/",
                close_fds=True,
            )
        except OSError as exc:
            raise TransportError(f"cannot start {self.python}: {exc}", host=self.host) from exc
        return self.start_session(ProcessPipe(process))
