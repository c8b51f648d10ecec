"""``python -m devstack run`` — what `make run` calls."""

from __future__ import annotations

import argparse
import sys

from devstack.platform import run


def main() -> int:
    parser = argparse.ArgumentParser(prog="devstack", description="mes-edge local platform")
    parser.add_argument("command", choices=["run"], help="run: start the whole platform until Ctrl-C")
    parser.parse_args()
    return run()


if __name__ == "__main__":
    sys.exit(main())
