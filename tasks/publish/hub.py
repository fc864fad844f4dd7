"""Pushing a release to the Hugging Face Hub as a dataset repository.

The token comes from the environment (HF_TOKEN by default) and is never logged. The release
folder already has the Hub's layout: README.md with the YAML header, data/*.parquet.
"""

from __future__ import annotations

import os
import tempfile
from pathlib import Path

from fsspec.implementations.local import LocalFileSystem

from synthq.tasks.core.errors import ConfigError
from synthq.tasks.core.lake import Lake


def hub_token(token_env: str) -> str:
    """The token, checked before anything is published, so a missing one costs nothing."""
    token = os.environ.get(token_env)
    if not token:
        raise ConfigError(f"Pushing to the Hub needs a Hugging Face token in the environment variable {token_env}.")
    return token


def push_release(lake: Lake, release_path: str, repo: str, token: str, *, private: bool = True, api=None) -> str:
    """Upload one release folder to `repo` (a dataset repo, created if missing); returns its URL."""
    if api is None:
        from huggingface_hub import HfApi

        api = HfApi()
    version = release_path.rstrip("/").rsplit("/", 1)[-1]
    with tempfile.TemporaryDirectory() as tmp:
        folder = release_path
        if not isinstance(lake.fs, LocalFileSystem):  # remote lake: stage the release locally
            lake.fs.get(release_path.rstrip("/") + "/", tmp + "/", recursive=True)
            folder = str(Path(tmp))
        api.create_repo(repo, token=token, repo_type="dataset", private=private, exist_ok=True)
        api.upload_folder(
            repo_id=repo, folder_path=folder, repo_type="dataset", token=token,
            commit_message=f"synthq release {version}", allow_patterns=["README.md", "data/*", "stats.json", "config.yaml"],
        )
    return f"https://huggingface.co/datasets/{repo}"
