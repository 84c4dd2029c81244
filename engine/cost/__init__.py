"""What training costs, in FLOPs and bytes (pure Python): the analytic architecture walk
(``arch``), per-layer FLOPs and memory at given densities (``costmodel``), the whole run's
forecast (``projection``), what a run actually spent (``ledger``), and the check that a run
fits the machine before it starts (``preflight``)."""
