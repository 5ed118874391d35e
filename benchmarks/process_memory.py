"""Peak resident memory of a process tree, per phase, sampled from /proc in a background thread.

``ru_maxrss`` gives one whole-run figure; this attributes the peak to the phase running when it was
seen (the caller sets ``phase``, e.g. the DVC stage that just started). A sample is the largest
resident set of any one process of the tree (the root included), so it compares with
``ru_maxrss``; sampling every ``interval`` seconds can miss a spike shorter than that. Linux only.
"""

from __future__ import annotations

import os
import threading
from pathlib import Path


def _children() -> dict[int, list[int]]:
    out: dict[int, list[int]] = {}
    for entry in os.scandir("/proc"):
        if not entry.name.isdigit():
            continue
        try:
            stat = Path(entry.path, "stat").read_text()
        except OSError:
            continue
        ppid = int(stat.rsplit(")", 1)[1].split()[1])  # the command name may hold spaces and ')'
        out.setdefault(ppid, []).append(int(entry.name))
    return out


def _rss_bytes(pid: int) -> int:
    try:
        for line in Path(f"/proc/{pid}/status").read_text().splitlines():
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) * 1024
    except OSError:
        pass
    return 0


def largest_rss(root: int) -> int:
    """Bytes: the largest resident set among ``root`` and its descendants now."""
    children, todo, best = _children(), [root], 0
    while todo:
        pid = todo.pop()
        best = max(best, _rss_bytes(pid))
        todo.extend(children.get(pid, ()))
    return best


class PeakMemory:
    """``with PeakMemory(pid) as m: ... m.phase = "train" ...``; then ``m.peaks``: phase -> GB.
    ``enabled=False`` samples nothing (no thread), for callers that time a run and want no extra load."""

    def __init__(self, root: int, interval: float = 0.2, enabled: bool = True):
        self.root, self.interval, self.enabled = root, interval, enabled
        self.phase = "start"
        self.peaks: dict[str, float] = {}
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)

    def _run(self) -> None:
        while not self._stop.wait(self.interval):
            gb = largest_rss(self.root) / 2**30
            phase = self.phase
            self.peaks[phase] = max(self.peaks.get(phase, 0.0), gb)

    def __enter__(self) -> PeakMemory:
        if self.enabled:
            self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        if self.enabled:
            self._stop.set()
            self._thread.join()
