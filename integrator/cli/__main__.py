"""python -m integrator.cli"""

import sys

from integrator.cli import main

sys.exit(main())
