"""The studio's contact with the machine: the engine subprocess (``engine_process``),
background tasks (``tasks``), NVIDIA GPUs through NVML (``gpu_info``, ``hw_monitor``) and
the system libraries Qt needs (``qt_libs``)."""
