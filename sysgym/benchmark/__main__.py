"""``python -m sysgym.benchmark`` = ``sysgym benchmark``."""

from .commands import main

if __name__ == "__main__":     # worker processes (spawn) import this module as __mp_main__
    raise SystemExit(main())
