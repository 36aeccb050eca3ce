import sys

from canon.cli import main

sys.exit(main())
