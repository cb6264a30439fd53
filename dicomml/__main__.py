"""`python -m dicomml` runs the command line."""

import sys

from dicomml.cli import main

sys.exit(main())
