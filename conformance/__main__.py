"""`python -m conformance ...`: see conformance/main.py."""
import sys

from .main import main

sys.exit(main())
