"""The bundled sample: HTML pages on varied topics (with real page chrome) and seed instructions.

Written for synthq so that `make demo` runs the whole factory with no download.
"""

from pathlib import Path

HERE = Path(__file__).parent
PAGES = HERE / "pages"
SEEDS = HERE / "seeds.jsonl"


def resolve(value: str, bundled: Path) -> str:
    """'sample' names the bundled file or folder; anything else is a user path."""
    return str(bundled) if value == "sample" else value
