"""``python -m netns_kit``: the same as the ``netns-kit`` command."""

from .cli import main

if __name__ == "__main__":
    raise SystemExit(main())
