"""`--smoke` for every bench: tiny sizes, the same code path, so the test suite runs each
bench and a refactor cannot break one unseen."""

from __future__ import annotations

import argparse


def parse(ap: argparse.ArgumentParser, **tiny) -> argparse.Namespace:
    """Parse the bench's arguments; with --smoke, the given arguments take their tiny values."""
    ap.add_argument("--smoke", action="store_true", help="tiny sizes, same code path (run by the test suite)")
    args = ap.parse_args()
    if args.smoke:
        for name, value in tiny.items():
            setattr(args, name, value)
    return args
