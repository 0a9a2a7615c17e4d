"""Where weights come from: local paths, or `hf://org/repo[@revision]/path` resolved with
huggingface_hub (its cache, revision pinning and HF_HUB_OFFLINE respected).

`local_root` (the pipeline's `settings.weights_dir`, the CLI's `--weights-dir`, or the env var
VOXPIPE_WEIGHTS_DIR) points a whole pipeline at a local copy of the official layout: an
`hf://org/repo/path` then resolves to the first existing of `ROOT/org/repo/path`,
`ROOT/repo/path` and `ROOT/path`.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path

from voxpipe.core.errors import WeightsError

HF_SCHEME = "hf://"
WEIGHTS_DIR_ENV = "VOXPIPE_WEIGHTS_DIR"


@dataclass(frozen=True)
class HubLocation:
    repo_id: str
    path: str
    revision: str | None

    @classmethod
    def parse(cls, uri: str) -> "HubLocation":
        """`hf://org/repo[@rev][/path]` -> (org/repo, path, rev)."""
        rest = uri[len(HF_SCHEME):].strip("/")
        parts = rest.split("/")
        if len(parts) < 2 or not parts[0] or not parts[1]:
            raise WeightsError(f"weight location {uri!r} is not of the form hf://org/repo[@revision]/path")
        repo, _, revision = parts[1].partition("@")
        return cls(f"{parts[0]}/{repo}", "/".join(parts[2:]), revision or None)

    def local_candidates(self, root: Path) -> list[Path]:
        org, repo = self.repo_id.split("/")
        return [root / org / repo / self.path, root / repo / self.path, root / self.path]


def is_hub_uri(location: str) -> bool:
    return str(location).startswith(HF_SCHEME)


def resolve_path(location: str | Path, *, local_root: str | Path | None = None, what: str = "weights") -> Path:
    """A local file or directory for `location`; raises WeightsError naming what was looked for where."""
    location = str(location)
    root = local_root or os.environ.get(WEIGHTS_DIR_ENV) or None
    if not is_hub_uri(location):
        path = Path(location).expanduser()
        if not path.exists():
            raise WeightsError(f"{what} not found: {path} (looked at {path.resolve()})")
        return path
    hub = HubLocation.parse(location)
    if root is not None:
        candidates = hub.local_candidates(Path(root))
        for candidate in candidates:
            if candidate.exists():
                return candidate
        raise WeightsError(
            f"{what} {location} not found under the local weights directory {root}; looked at: "
            + ", ".join(str(c) for c in candidates)
        )
    return _download(hub, location, what)


def _download(hub: HubLocation, location: str, what: str) -> Path:
    try:
        import huggingface_hub
        from huggingface_hub.utils import HfHubHTTPError
    except ImportError:  # pragma: no cover - a core dependency
        raise WeightsError(f"{what} {location} needs huggingface_hub: pip install huggingface_hub") from None
    how = (
        f"download it (huggingface-cli download {hub.repo_id}{' ' + hub.path if hub.path else ''}) on a machine "
        f"with access, or point voxpipe at a local copy with --weights-dir DIR / {WEIGHTS_DIR_ENV}=DIR "
        f"(DIR/{hub.repo_id}/{hub.path or ''}), or give a local path in the pipeline file"
    )
    try:
        if hub.path and "." in hub.path.rsplit("/", 1)[-1]:
            return Path(huggingface_hub.hf_hub_download(hub.repo_id, hub.path, revision=hub.revision))
        patterns = [f"{hub.path}/*"] if hub.path else None
        # A whole repository: the torch layout only (official repos also carry large ONNX exports).
        ignore = None if hub.path else ["*.onnx", "*.onnx_data", "*.onnx.data"]
        snapshot = Path(huggingface_hub.snapshot_download(
            hub.repo_id, revision=hub.revision, allow_patterns=patterns, ignore_patterns=ignore
        ))
        target = snapshot / hub.path if hub.path else snapshot
        if not target.exists():
            raise FileNotFoundError(target)
        return target
    except (HfHubHTTPError, OSError, ValueError) as error:
        offline = os.environ.get("HF_HUB_OFFLINE", "") not in ("", "0", "false", "False")
        state = "offline (HF_HUB_OFFLINE is set) and not in the cache" if offline else f"could not be fetched ({type(error).__name__}: {error})"
        raise WeightsError(
            f"{what}: file {hub.path or '(whole repository)'} of Hugging Face repo {hub.repo_id} "
            f"{state}. To provide it: {how}"
        ) from None
    except Exception as error:  # huggingface_hub raises its own error types for offline / missing files
        raise WeightsError(
            f"{what}: file {hub.path or '(whole repository)'} of Hugging Face repo {hub.repo_id} could not be "
            f"resolved ({type(error).__name__}: {error}). To provide it: {how}"
        ) from None


def require_file(directory: Path, names: list[str], what: str) -> Path:
    """The first of `names` that exists in `directory`, or a WeightsError listing them all."""
    for name in names:
        if (directory / name).is_file():
            return directory / name
    raise WeightsError(f"{what}: none of {', '.join(names)} found in {directory}")
