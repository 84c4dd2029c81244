"""Progressive layer freezing (SpFDE Sec. 4.2, Alg. 1): the freeze schedule (``schedule``:
per-block freeze epochs from the training-FLOPs target, pure Python) and the component that
applies it to the model (``freezer``)."""
