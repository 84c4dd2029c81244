"""Compare labels name what actually tells the runs apart."""
from spfde_gui.model.run_model import differing_fields


def _cfg(**over):
    d = {"name": "demo", "seed": 0, "epochs": 28, "analysis": {"probe_size": 512},
         "data": {"label_noise": 0.05}, "freeze": {"target": 0.2}, "sieve": {"ratio": 0.2},
         "sparsity": {"target": 0.9}}
    for k, v in over.items():
        a, _, b = k.partition("__")
        if b:
            d[a] = {**d[a], b: v}
        else:
            d[a] = v
    return d


def test_two_runs_differing_in_one_field_are_labelled_by_it():
    assert differing_fields([_cfg(), _cfg(sieve__ratio=0.1)]) == ["sieve.ratio"]


def test_labels_tell_every_run_apart_when_alphabetical_keys_would_not():
    # the third run differs in three alphabetically earlier keys; the first two only in sieve.ratio
    runs = [_cfg(), _cfg(sieve__ratio=0.1),
            _cfg(analysis__probe_size=256, data__label_noise=0.1, epochs=10, sieve__ratio=0.2)]
    keys = differing_fields(runs)
    assert "sieve.ratio" in keys and len(keys) <= 3
    labels = {tuple(repr(_flat(r).get(k)) for k in keys) for r in runs}
    assert len(labels) == 3


def _flat(d, prefix=""):
    out = {}
    for k, v in d.items():
        if isinstance(v, dict):
            out.update(_flat(v, prefix + k + "."))
        else:
            out[prefix + k] = v
    return out
