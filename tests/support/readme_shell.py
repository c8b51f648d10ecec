"""The README's shell examples, extracted from the README itself and run with bash.

Convention: every ```` ```sh ```` block of README.md is preceded by a marker line,
``<!-- readme-test: run -->`` (run, in order, in one shell, against a running ``make run``)
or ``<!-- readme-test: skip: <why> -->``. Markers are HTML comments: invisible on GitHub.

``curl`` is wrapped so that every answer's status also goes to stderr (``-w`` with
``%{stderr}``, the command's own output unchanged); an answer of 400 or more is a failure unless
the README's line that makes the request says so in a comment (``… # 404 problem+json``).
"""

from __future__ import annotations

import re
import subprocess
from dataclasses import dataclass
from pathlib import Path

MARKER = re.compile(r"^<!-- readme-test: (run|skip: .+) -->$")
STATUS = re.compile(r"^readme-test-http (\d{3}) (\S+) (\S+)$", re.M)
CURL_WRAPPER = ("curl() { command curl -w '%{stderr}readme-test-http %{http_code} %{method} "
                "%{url_effective}\\n' \"$@\"; }")


@dataclass(frozen=True)
class ShellBlock:
    """One ```` ```sh ```` block: its first line number in the file, its marker and its text."""

    line: int
    marker: str | None  # "run", "skip: …" or None (unmarked)
    text: str


def sh_blocks(markdown: str) -> list[ShellBlock]:
    lines = markdown.splitlines()
    blocks = []
    i = 0
    while i < len(lines):
        if lines[i].strip() == "```sh":
            marker = MARKER.match(lines[i - 1].strip()) if i else None
            end = next(j for j in range(i + 1, len(lines)) if lines[j].strip() == "```")
            blocks.append(ShellBlock(line=i + 1, marker=marker.group(1) if marker else None,
                                     text="\n".join(lines[i + 1:end])))
            i = end
        i += 1
    return blocks


def script(commands: list[tuple[str, str]]) -> str:
    """One bash script: ``set -eu`` (like a careful user: stop at the first failing command, no
    unset variables), the curl wrapper, then each ``(label, text)`` in order."""
    parts = ["set -eu", CURL_WRAPPER]
    for label, text in commands:
        parts += [f"echo '### {label}' >&2", text]
    return "\n".join(parts) + "\n"


@dataclass(frozen=True)
class ShellRun:
    returncode: int
    stdout: str
    stderr: str

    def statuses(self) -> list[tuple[int, str, str]]:
        """(status, method, URL) of every curl answer, in order."""
        return [(int(code), method, url) for code, method, url in STATUS.findall(self.stderr)]

    def unexpected_errors(self, source: str) -> list[tuple[int, str, str]]:
        """Answers >= 400 that no line of ``source`` requesting that URL announces (``# <status>``)."""
        bad = []
        for code, method, url in self.statuses():
            announced = any(url in line and re.search(rf"#\s*{code}\b", line) for line in source.splitlines())
            if code >= 400 and not announced:
                bad.append((code, method, url))
        return bad

    def report(self) -> str:
        return f"exit {self.returncode}\n--- stdout\n{self.stdout[-6000:]}\n--- stderr\n{self.stderr[-6000:]}"


def run_bash(text: str, *, cwd: Path, env: dict[str, str], timeout: float) -> ShellRun:
    done = subprocess.run(["bash", "-c", text], cwd=cwd, env=env, capture_output=True, text=True,
                          timeout=timeout, check=False)
    return ShellRun(done.returncode, done.stdout, done.stderr)
