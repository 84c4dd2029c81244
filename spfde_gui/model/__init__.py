"""What the studio knows of runs, without Qt: a run's event stream folded into columns
(``run_model``), what the window says about it (``run_state``), and its Section 3
analyses as matrices (``analysis_data``)."""
