"""python -m integrator.faces.cli"""

import sys

from integrator.faces.cli import main

sys.exit(main())
