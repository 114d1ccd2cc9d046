"""``python -m comms``."""

from comms.cli import main

main()
