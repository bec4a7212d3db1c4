"""What an ansible-playbook run did, read from the rampart.mqtt.results callback (never from the screen).

``run()`` runs a command (ansible-playbook, or a Molecule-style wrapper of it) with the collection's
``rampart.mqtt.results`` callback enabled next to the human stdout callback, and returns a
``PlaybookResult``: the exit code, the screen output (for people and error reports), the callback's
records, per-host stats, changed tasks and failures. The lab, the tests and the audit read results this way.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import tempfile
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path

CALLBACK = "rampart.mqtt.results"
STATUSES = ("ok", "changed", "failed", "skipped", "unreachable")


@dataclass(frozen=True)
class HostStats:
    ok: int = 0
    changed: int = 0
    failed: int = 0
    unreachable: int = 0
    skipped: int = 0
    rescued: int = 0
    ignored: int = 0


@dataclass(frozen=True)
class TaskResult:
    """One task's result on one host (a record of type "task")."""

    host: str
    play: str | None
    role: str | None
    task: str
    action: str
    status: str
    changed: bool
    handler: bool = False
    censored: bool = False
    gathers_facts: bool = False
    ignored: bool = False
    diff: list = field(default_factory=list)
    msg: str | None = None
    failed_items: list = field(default_factory=list)
    path: str | None = None  # where the task is written: "file:line"

    @property
    def name(self) -> str:
        """The task as the screen names it: ``role : task`` for a role's task (role without its collection)."""
        return f"{self.role.rsplit('.', 1)[-1]} : {self.task}" if self.role else self.task

    @property
    def messages(self) -> list[str]:
        """The failure message and those of failed loop items."""
        return [m for m in [self.msg or "", *(i["msg"] for i in self.failed_items)] if m]

    @classmethod
    def from_record(cls, record: Mapping) -> TaskResult:
        names = cls.__dataclass_fields__
        return cls(**{k: v for k, v in record.items() if k in names})


@dataclass(frozen=True)
class PlaybookResult:
    """The result of one run: rc, the screen output, and the callback's records."""

    rc: int
    output: str
    records: tuple[dict, ...] = ()

    @property
    def plays(self) -> list[str]:
        """Names of the plays that started, in order."""
        return [r["play"] for r in self.records if r["type"] == "play"]

    @property
    def tasks(self) -> list[TaskResult]:
        return [TaskResult.from_record(r) for r in self.records if r["type"] == "task"]

    @property
    def stats(self) -> dict[str, HostStats]:
        """host -> its final counts (what the recap shows)."""
        fields = HostStats.__dataclass_fields__
        return {r["host"]: HostStats(**{k: v for k, v in r.items() if k in fields})
                for r in self.records if r["type"] == "stats"}

    @property
    def changed(self) -> int:
        """Changed tasks over every host (the recap's changed= summed)."""
        return sum(s.changed for s in self.stats.values())

    @property
    def changed_tasks(self) -> list[TaskResult]:
        return [t for t in self.tasks if t.status == "changed"]

    @property
    def failures(self) -> list[TaskResult]:
        """Failed (not ignored) and unreachable results, in order."""
        return [t for t in self.tasks if (t.status == "failed" and not t.ignored) or t.status == "unreachable"]

    @property
    def unreachable(self) -> int:
        """Unreachable results over every host (the recap's unreachable= summed)."""
        return sum(s.unreachable for s in self.stats.values())

    @property
    def contacted_a_host(self) -> bool:
        """True when facts were gathered from a host or a host was unreachable."""
        return self.unreachable > 0 or any(t.gathers_facts or t.status == "unreachable" for t in self.tasks)

    def statuses(self, task: str) -> set[str]:
        """The statuses a task (its name, or a prefix of it, without the role) ended with on its hosts."""
        return {t.status for t in self.tasks if t.task.startswith(task)}

    def ran(self, task: str) -> bool:
        """True when a task of that name (``role : task`` or just the task) produced a result."""
        return any(task in (t.name, t.task) for t in self.tasks)


def read(path: Path) -> tuple[dict, ...]:
    """The records of a results file (empty when the run wrote none)."""
    if not path.exists():
        return ()
    return tuple(json.loads(line) for line in path.read_text().splitlines() if line.strip())


def callback_env(env: Mapping[str, str], path: Path) -> dict[str, str]:
    """``env`` plus the callback enabled (keeping callbacks already enabled) writing to ``path``."""
    enabled = [c for c in env.get("ANSIBLE_CALLBACKS_ENABLED", "").split(",") if c.strip()]
    if CALLBACK not in enabled:
        enabled.append(CALLBACK)
    return {**env, "ANSIBLE_CALLBACKS_ENABLED": ",".join(enabled), "RAMPART_RESULTS": str(path)}


def run(cmd: Sequence[str], *, env: Mapping[str, str] | None = None, cwd: Path | str | None = None,
        timeout: float | None = None, echo: bool = False) -> PlaybookResult:
    """Run ``cmd`` with the callback enabled; stdout and stderr combined. ``echo`` copies the output live."""
    with tempfile.TemporaryDirectory(prefix="rampart-results-") as scratch:
        path = Path(scratch) / "results.jsonl"
        full_env = callback_env(os.environ if env is None else env, path)
        if echo:
            proc = subprocess.Popen(list(cmd), cwd=cwd, env=full_env, stdout=subprocess.PIPE,
                                    stderr=subprocess.STDOUT, text=True)
            lines = []
            for line in proc.stdout:
                sys.stdout.write(line)
                lines.append(line)
            rc, output = proc.wait(timeout=timeout), "".join(lines)
        else:
            res = subprocess.run(list(cmd), cwd=cwd, env=full_env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
                                 text=True, timeout=timeout, check=False)
            rc, output = res.returncode, res.stdout
        return PlaybookResult(rc, output, read(path))


class Running:
    """An ansible-playbook run started in the background (``start()``): the caller does other work, polls
    ``done()``, then ``wait()``s for its PlaybookResult. The output goes to a file, so a long run never blocks on
    a full pipe."""

    def __init__(self, cmd: Sequence[str], *, env: Mapping[str, str] | None = None,
                 cwd: Path | str | None = None) -> None:
        self._scratch = tempfile.TemporaryDirectory(prefix="rampart-results-")
        self._path = Path(self._scratch.name) / "results.jsonl"
        self._output = open(Path(self._scratch.name) / "output.txt", "w+")  # noqa: SIM115 (closed by wait())
        full_env = callback_env(os.environ if env is None else env, self._path)
        self._proc = subprocess.Popen(list(cmd), cwd=cwd, env=full_env, stdout=self._output,
                                      stderr=subprocess.STDOUT, text=True)

    def done(self) -> bool:
        return self._proc.poll() is not None

    def stop(self) -> None:
        """End the run early (what it reported so far is still read by ``wait()``)."""
        if not self.done():
            self._proc.terminate()

    def wait(self, timeout: float | None = None) -> PlaybookResult:
        try:
            rc = self._proc.wait(timeout=timeout)
        except subprocess.TimeoutExpired:
            self._proc.kill()
            rc = self._proc.wait()
        self._output.seek(0)
        result = PlaybookResult(rc, self._output.read(), read(self._path))
        self._output.close()
        self._scratch.cleanup()
        return result


def start(cmd: Sequence[str], *, env: Mapping[str, str] | None = None,
          cwd: Path | str | None = None) -> Running:
    """``run()`` without waiting: the callback is enabled the same way."""
    return Running(cmd, env=env, cwd=cwd)
