"""The studio's sweeps: a queue that builds and runs a sweep cell by cell (``queue``), a
results view in the paper's table shape with an accuracy-vs-FLOPs Pareto plot
(``results_view``), the sweep report (``report``) and TensorBoard scalars
(``tensorboard``). The sweep logic itself is the engine's pure ``engine.sweep``."""
