"""``python -m engine`` is ``spfde-train``."""
import sys

from engine.cli import main

sys.exit(main())
