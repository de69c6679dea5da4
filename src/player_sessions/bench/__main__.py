"""`python -m player_sessions.bench ...`: the same as `player-sessions bench ...`."""

import sys

from player_sessions.bench.cli import main

if __name__ == "__main__":
    sys.exit(main())
