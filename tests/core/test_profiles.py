"""The paper profile loads, and the README's profile table lists exactly the settings where the
default differs from it, with both values as they are."""

import re
from pathlib import Path

from synthq.tasks.core.config import FactoryConfig, load_config

ROOT = Path(__file__).resolve().parents[2]
PAPER = ROOT / "configs" / "paper.yaml"


def _flat(data: dict, prefix: str = "") -> dict:
    out = {}
    for key, value in data.items():
        if isinstance(value, dict) and value and all(isinstance(k, str) for k in value):
            out.update(_flat(value, f"{prefix}{key}."))
        else:
            out[f"{prefix}{key}"] = value
    return out


def _table() -> dict[str, tuple[str, str]]:
    readme = (ROOT / "README.md").read_text()
    section = readme.split("<!-- profiles -->")[1]
    rows = re.findall(r"^\| `([\w.]+)` \| `([^`]*)` \| `([^`]*)` \|", section, flags=re.M)
    return {name: (default, paper) for name, default, paper in rows}


def test_paper_profile_loads_and_keeps_its_prompts_in_context():
    cfg = load_config(PAPER)
    s = cfg.synthesize
    assert s.prompt_tokens + s.max_output_tokens <= cfg.engine.max_model_len
    assert (s.max_demonstrations, s.prompt_tokens, s.document_tokens, s.group_size, s.similar_fraction, s.fill) == (
        10, 7500, 4096, 1, 0.0, "stop")
    assert not s.output_caps and not cfg.attribute.output_caps


def test_readme_lists_every_setting_where_the_default_differs():
    default, paper = _flat(FactoryConfig().model_dump()), _flat(load_config(PAPER).model_dump())
    differ = {k: (default[k], paper[k]) for k in default if default[k] != paper[k]}
    table = _table()
    assert set(table) == set(differ)
    for key, (d, p) in differ.items():
        assert table[key] == (str(d).lower() if isinstance(d, bool) else str(d), str(p).lower() if isinstance(p, bool) else str(p)), key
