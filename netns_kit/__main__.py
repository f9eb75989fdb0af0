"""``python -m netns_kit``: the same as the ``netns-kit`` command."""

from netns_kit.cli import entry

if __name__ == "__main__":
    entry()
