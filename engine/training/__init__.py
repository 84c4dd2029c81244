"""The training loop and what it needs: the ``trainer``, checkpoints and resume, the LR
schedule, ``precision`` (autocast, gradient scaling, compile), CPU ``threads`` (pure
Python, applied before torch loads), seeded generators, and the distributed context
(``distributed``, ``process_group``). Importing this package loads no torch."""
