"""`gengap-tui` (pyproject's [project.scripts]) and `python -m gengap_tui`: the command, with the
garbage collector held off while it starts (startup.py says why; cli.main lets it go)."""

from __future__ import annotations

import os
import sys

from . import startup


def main(argv: list[str] | None = None) -> int:
    startup.hold()  # before the imports: most of what start-up makes is made by them
    # pydantic looks for plugins in every installed distribution's entry points when the first
    # model class is made (~16 ms with the extras installed); the config's models use none
    os.environ.setdefault("PYDANTIC_DISABLE_PLUGINS", "__all__")
    from .cli import main as cli_main

    return cli_main(argv)


if __name__ == "__main__":
    sys.exit(main())
