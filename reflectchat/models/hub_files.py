"""What the Hugging Face Hub says of a repository's files: their sizes and sha256 (its LFS
metadata, through huggingface_hub, with its error types for unknown and gated repos), and the
URL each is served from."""

from __future__ import annotations

from dataclasses import dataclass
from urllib.parse import quote

import httpx


class PullError(Exception):
    """A download that cannot go on; the message says why and what to do."""


@dataclass(frozen=True)
class RemoteFile:
    path: str  # in the repo
    size: int
    sha256: str


def remote_files(repo: str, paths: list[str]) -> list[RemoteFile]:
    """Sizes and sha256 of `paths`, from the hub's metadata."""
    from huggingface_hub import HfApi
    from huggingface_hub.errors import (
        GatedRepoError,
        HfHubHTTPError,
        RepositoryNotFoundError,
    )

    try:
        infos = HfApi().get_paths_info(repo, paths)
    except GatedRepoError:
        raise PullError(f"{repo} is gated: accept its terms on its Hugging Face page, then log "
                        "in with `hf auth login` (or set HF_TOKEN)") from None
    except RepositoryNotFoundError:
        raise PullError(f"There is no repository {repo} on the hub (or it is private: log in "
                        "with `hf auth login`)") from None
    except HfHubHTTPError as exc:
        raise PullError(f"The hub refused the request for {repo}: {exc}") from None
    except httpx.HTTPError as exc:
        raise PullError(f"Cannot reach the Hugging Face Hub ({exc}); check the network") \
            from None
    except Exception as exc:  # huggingface_hub's own HTTP client raises its own network errors
        if type(exc).__module__.startswith(("httpx", "httpcore")):
            raise PullError(f"Cannot reach the Hugging Face Hub ({exc}); check the network") \
                from None
        raise
    found = {i.path: i for i in infos}
    missing = [p for p in paths if p not in found]
    if missing:
        raise PullError(f"{repo} has no file {', '.join(missing)}")
    files = []
    for path in paths:
        info = found[path]
        lfs = getattr(info, "lfs", None)
        if lfs is None:
            raise PullError(f"{repo}/{path} is not stored with LFS, so the hub gives no sha256 "
                            "to check it against")
        files.append(RemoteFile(path, int(lfs.size), str(lfs.sha256)))
    return files


def resolve_url(repo: str, path: str, revision: str = "main") -> str:
    """Where the hub serves a file (HF_ENDPOINT's, as huggingface_hub reads it now)."""
    from huggingface_hub import constants

    return (f"{constants.ENDPOINT}/{repo}/resolve/{quote(revision, safe='')}/"
            f"{quote(path, safe='/')}")
