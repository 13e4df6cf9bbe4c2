"""Checkpoints: DeepSpeed state plus loop state, written so a crash never costs a usable one.

Layout: `checkpoints/step0000012/` (DeepSpeed files + MANIFEST.json of every file's size) and
`checkpoints/LATEST` naming the newest complete one. The manifest is written, and LATEST moved
(atomic rename), only after every rank finished saving; the newest `keep` complete checkpoints are
kept. Loading checks the manifest first and falls back to the previous checkpoint when the newest
is truncated or fails to load.
"""

from __future__ import annotations

import json
import os
import shutil
import sys
from pathlib import Path
from typing import Any

import torch

MANIFEST = "MANIFEST.json"


def _barrier() -> None:
    if torch.distributed.is_initialized():
        torch.distributed.barrier()


def _sizes(d: Path) -> dict[str, int]:
    return {str(p.relative_to(d)): p.stat().st_size for p in sorted(d.rglob("*")) if p.is_file() and p.name != MANIFEST}


class Checkpoints:
    def __init__(self, root: Path, rank: int = 0, keep: int = 2):
        self.root = Path(root)
        self.rank = rank
        self.keep = max(1, keep)

    def save(self, trainer, tag: str, client_state: dict[str, Any]) -> None:
        trainer.save(str(self.root), tag, client_state)
        _barrier()
        if self.rank == 0:
            d = self.root / tag
            tmp = d / (MANIFEST + ".tmp")
            tmp.write_text(json.dumps(_sizes(d)))
            os.replace(tmp, d / MANIFEST)
            tmp = self.root / "LATEST.tmp"
            tmp.write_text(tag)
            os.replace(tmp, self.root / "LATEST")
            (self.root / "latest").unlink(missing_ok=True)  # DeepSpeed's own pointer; LATEST is ours
            self._prune(tag)
        _barrier()

    def _prune(self, current: str) -> None:
        complete = self.complete_tags()
        for d in self.root.glob("step*"):
            if d.name == current:
                continue
            if d.name not in complete[: self.keep]:  # older than the kept ones, or never completed
                shutil.rmtree(d, ignore_errors=True)

    def complete_tags(self) -> list[str]:
        """Tags with a manifest, newest first."""
        if not self.root.is_dir():
            return []
        return sorted((d.name for d in self.root.glob("step*") if (d / MANIFEST).is_file()), reverse=True)

    def verify(self, tag: str) -> str | None:
        """None when every file the manifest lists is there with its size; else what is wrong."""
        d = self.root / tag
        try:
            want = json.loads((d / MANIFEST).read_text())
        except (OSError, ValueError) as e:
            return f"manifest unreadable ({e})"
        have = _sizes(d)
        for name, size in want.items():
            if have.get(name) != size:
                return f"{name}: expected {size} bytes, found {have.get(name, 'none')}"
        return None

    def load(self, trainer) -> tuple[str, dict[str, Any]] | None:
        """Load the newest usable checkpoint; None when there is none.

        Rank 0 chooses (its manifests decide) and every rank loads the same tag, after every rank
        has found that tag's directory: ranks never load different checkpoints, and without a
        shared file system a node missing its shards makes all ranks try the previous one."""
        for tag in self._agreed_candidates():
            problem = self.verify(tag) if self.rank == 0 else None
            here = (self.root / tag).is_dir()
            if torch.distributed.is_initialized() and torch.distributed.get_world_size() > 1:
                from rapidbench.distributed import all_reduce_sum

                missing = all_reduce_sum([0.0 if (here and problem is None) else 1.0])[0]
                problem = problem or (f"missing on {int(missing)} rank(s)" if missing else None)
            if problem is None:
                try:
                    return tag, trainer.load(str(self.root), tag)
                except Exception as e:  # noqa: BLE001 - any failure means: try the previous one
                    problem = f"{type(e).__name__}: {str(e).splitlines()[0] if str(e) else ''}"
            print(f"[rapidbench] checkpoint {tag} is unusable ({problem}); trying the previous one",
                  file=sys.stderr, flush=True)
        return None

    def _agreed_candidates(self) -> list[str]:
        """Rank 0's complete tags, newest first, on every rank."""
        tags = [self.complete_tags() if self.rank == 0 else []]
        if torch.distributed.is_initialized() and torch.distributed.get_world_size() > 1:
            torch.distributed.broadcast_object_list(tags, src=0)
        return tags[0]
