"""The Hugging Face cache layout, as huggingface_hub defines it (blobs by sha256, snapshots by
commit, locks beside them), so a file another tool downloaded is used as is and what we
download is found by every other tool."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path


@dataclass(frozen=True)
class CachePaths:
    repo_dir: Path

    @classmethod
    def for_repo(cls, repo: str) -> CachePaths:
        from huggingface_hub import constants

        return cls(Path(constants.HF_HUB_CACHE) / f"models--{repo.replace('/', '--')}")

    def blob(self, sha256: str) -> Path:
        return self.repo_dir / "blobs" / sha256

    def lock(self, sha256: str) -> Path:
        """Where huggingface_hub itself locks this blob (its FileLock uses flock too), so a
        download by `hf` and one by us do not write the same file either."""
        return self.repo_dir.parent / ".locks" / self.repo_dir.name / f"{sha256}.lock"

    def incomplete(self, sha256: str) -> Path:
        return self.repo_dir / "blobs" / f"{sha256}.incomplete"

    def snapshot(self, commit: str, path: str) -> Path:
        return self.repo_dir / "snapshots" / commit / path
