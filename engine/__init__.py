"""SpFDE training engine. Importing this package loads no torch: the pure-Python modules
(engine.config, engine.run, engine.cost, the schedules) are shared with the GUI."""
__version__ = "0.1.0"

from engine import moved as _moved

_moved.install()     # old module paths (engine.plan, engine.trainer, ...) keep importing
