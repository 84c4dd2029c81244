"""Section 3 analyses of the paper, measured during training (docs/layer-freezing.md).

* ``schedule`` (pure Python): when measurements happen and what they cost, shared by the
  planner and the run, so plan and ledger agree;
* ``adaptive`` (pure Python): the adaptive freezing rule driven by the measurements;
* ``metrics`` (torch): linear CKA, the top-half weight sets and their overlap;
* ``component`` (torch): the ``Analysis`` training component.

Importing this package loads neither torch nor Qt; import the torch modules by name.
"""
