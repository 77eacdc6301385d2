"""Logging for rule scripts: their stderr is the rule's log file."""

import logging
import sys


def configure_logging(level=logging.INFO):
    logging.basicConfig(
        stream=sys.stderr,
        level=level,
        format="%(asctime)s %(levelname)s %(name)s: %(message)s",
        force=True,
    )
