"""Finding input files and Hugging Face datasets wherever they live: local paths, globs,
folders and any fsspec URL (s3://, gs://, memory://, http://...), `hf:` datasets saved to
disk or in the offline cache. Shared by every stage that reads user files (ingest, seeds,
benchmarks), so each reads them the same way.
"""

from __future__ import annotations

import contextlib
import os
from pathlib import Path

import fsspec

from synthq.tasks.core.errors import InputError


def cache_dir() -> Path:
    """This node's cache folder (`SYNTHQ_CACHE`, default ~/.cache/synthq): the bundled model,
    node-local copies of indexes kept in a remote lake."""
    return Path(os.environ.get("SYNTHQ_CACHE", Path.home() / ".cache" / "synthq"))


def list_files(source: str, hint: str) -> tuple[fsspec.AbstractFileSystem, dict[str, dict]]:
    """Every file a folder (recursively), glob or file names, with its fsspec info; `hint`
    ends the error when nothing is there (what the caller expected)."""
    fs, path = fsspec.core.url_to_fs(source)
    if any(c in path for c in "*?["):
        infos = {}
        for name, info in fs.glob(path, detail=True).items():
            infos.update(fs.find(name, detail=True) if info["type"] == "directory" else {name: info})
        return fs, infos
    if fs.isdir(path):
        return fs, fs.find(path, detail=True)
    if fs.isfile(path):
        return fs, {path: fs.info(path)}
    raise InputError(f"Source '{source}' does not exist. {hint}")


@contextlib.contextmanager
def hub_offline():
    """No request to the Hub while loading: only datasets saved or cached locally are read."""
    import datasets.config
    import huggingface_hub.constants as hub

    saved = datasets.config.HF_HUB_OFFLINE, hub.HF_HUB_OFFLINE
    datasets.config.HF_HUB_OFFLINE = hub.HF_HUB_OFFLINE = True
    try:
        yield
    finally:
        datasets.config.HF_HUB_OFFLINE, hub.HF_HUB_OFFLINE = saved


def load_hf(target: str):
    """A dataset saved with save_to_disk (folder or fsspec URL), else a name in the offline cache."""
    import datasets

    fs, path = fsspec.core.url_to_fs(target)
    if fs.exists(path):
        return datasets.load_from_disk(target)
    try:
        with hub_offline():
            return datasets.load_dataset(target)
    except Exception as e:
        raise InputError(
            f"hf:{target} is neither a folder written by save_to_disk nor a dataset in the local Hugging "
            f"Face cache ({datasets.config.HF_DATASETS_CACHE}). Only local or cached datasets work here: "
            f"save it with `Dataset.save_to_disk(PATH)` and give hf:PATH, or load it once where the Hub "
            f"is reachable so it is cached. ({type(e).__name__}: {e})"[:1200]
        ) from e
