"""Experiment trackers: the run's events logged live to TensorBoard, MLflow and W&B, each
through its own library, behind a bounded background queue (docs/trackers.md).

Pure (no torch): ``records`` turns events into what a tracker logs, ``trackers`` holds one
class per library (each imported lazily), ``background`` runs one behind a queue and a
worker thread, ``ids`` keeps the tracker run ids in the run folder (a resume continues the
same tracker run), ``secrets`` masks credentials, ``export`` replays past runs, ``groups``
makes a sweep's MLflow parent run. The training component is ``component`` (it alone may
load torch, for TensorBoard's ``SummaryWriter``).
"""
