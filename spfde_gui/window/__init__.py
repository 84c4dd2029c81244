"""The studio window and its panels: ``main_window``, the configuration form, the cost
projection panel, the runs panel, the GPU selector, and the application set-up (``app``)."""
