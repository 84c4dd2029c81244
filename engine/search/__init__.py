"""``spfde-train search``: an Optuna search over sparsity x freezing x sieving within a
training-FLOPs budget (docs/search.md). ``spec`` and ``feasibility`` are pure Python; ``study``
drives Optuna and runs the trials as sweep cells through engine.sweep.runner."""
