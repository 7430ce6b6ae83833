"""``python -m experiments.requests``: segal-request; ``... merge``: segal-merge-labels; ``... label-studio``: create a
Label Studio project with the images' storage and import a round's tasks through the API."""

import sys

from .api import setup_main
from .command import main
from .merge import merge_main

COMMANDS = {"merge": merge_main, "label-studio": setup_main}

if len(sys.argv) > 1 and sys.argv[1] in COMMANDS:
    sys.exit(COMMANDS[sys.argv[1]](sys.argv[2:]))
sys.exit(main())
