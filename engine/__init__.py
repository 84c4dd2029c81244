"""SpFDE training engine. Importing this package loads no torch: the pure-Python modules
(config, events, arch, costmodel, plan, freeze_plan, dst_schedule) are shared with the GUI."""
__version__ = "0.1.0"
