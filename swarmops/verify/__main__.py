"""`python -m swarmops.verify`: see swarmops.verify.cli."""

import sys

from swarmops.verify.cli import main

if __name__ == "__main__":
    sys.exit(main())
