"""Versioned prompt templates.

A prompt is a YAML file in its stage's folder with `system` and `user` Jinja templates. Its
version is the file name plus a hash of its content, so any edit changes the version that
every row records (and every cache key built from the rendered prompt).
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path

import jinja2
import yaml

_ENV = jinja2.Environment(undefined=jinja2.StrictUndefined, keep_trailing_newline=False, autoescape=False)


def fence(text: str, tag: str = "document") -> str:
    """Untrusted text between tags it cannot close itself: it stays data, not instructions."""
    return text.replace(f"</{tag}>", f"</ {tag}>").replace(f"<{tag}>", f"< {tag}>")


_ENV.filters["fence"] = fence


@dataclass(frozen=True, eq=False)
class Prompt:
    name: str
    version: str
    system: jinja2.Template
    user: jinja2.Template
    parts: dict[str, jinja2.Template]

    def render(self, part: str, **values) -> str:
        """Render a named extra template of the file (e.g. one demonstration block)."""
        return self.parts[part].render(**values).strip()

    def messages(self, **values) -> list[dict]:
        return [
            {"role": "system", "content": self.system.render(**values).strip()},
            {"role": "user", "content": self.user.render(**values).strip()},
        ]


def load_prompt(path: str | Path) -> Prompt:
    """The prompt file as it is now: an edit is seen at once, also by long-lived workers."""
    p = Path(path)
    st = p.stat()
    return _load(p, st.st_mtime_ns, st.st_size)


@lru_cache(maxsize=256)
def _load(p: Path, mtime_ns: int, size: int) -> Prompt:
    raw = p.read_text()
    spec = yaml.safe_load(raw)
    digest = hashlib.sha256(raw.encode()).hexdigest()[:8]
    return Prompt(
        name=p.stem,
        version=f"{p.stem}@{digest}",
        system=_ENV.from_string(spec["system"]),
        user=_ENV.from_string(spec["user"]),
        parts={k: _ENV.from_string(v) for k, v in spec.items() if k not in ("system", "user")},
    )
