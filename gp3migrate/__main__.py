import sys

from gp3migrate.cli import main

sys.exit(main())
