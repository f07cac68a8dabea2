"""tests/prod: doctor, ps, namespaces, many processes, the kubectl plugin (issue 15)."""

import os
import sys

# prodcli.py sits beside this file; make it importable whatever pytest's import mode.
if os.path.dirname(__file__) not in sys.path:
    sys.path.insert(0, os.path.dirname(__file__))
