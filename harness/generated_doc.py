"""The command line of a generated documentation page: write it, or check the committed copy.

Pages such as docs/register-map.md are rendered from the code that serves what they describe; a
test runs ``--check`` so a change to a map cannot land without its page.
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Callable, Sequence
from pathlib import Path


def generated_page_main(
    argv: Sequence[str] | None, *, render: Callable[[], str], default_path: Path, regenerate: str, what: str
) -> int:
    """Write ``render()`` to ``--output`` (default ``default_path``), or with ``--check`` exit 1 if stale."""
    parser = argparse.ArgumentParser(description=f"Write {default_path.name} from {what}.")
    parser.add_argument("--output", type=Path, default=default_path, help="where the page goes")
    parser.add_argument("--check", action="store_true", help=f"exit 1 if the page differs from {what}")
    args = parser.parse_args(argv)
    text = render()
    if args.check:
        current = args.output.read_text(encoding="utf-8") if args.output.exists() else ""
        if current != text:
            print(f"{args.output} is stale: run {regenerate}", file=sys.stderr)
            return 1
        return 0
    args.output.write_text(text, encoding="utf-8")
    return 0
