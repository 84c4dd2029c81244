"""A SummaryWriter without torch, for ``spfde-gui export --tensorboard`` (the studio never
loads torch): the ``tensorboard`` package's own event-file writer and protocol buffers, with
the scalar and text summaries built as ``torch.utils.tensorboard`` builds them. It offers
the calls ``TensorBoardTracker`` makes (add_scalar, add_text, flush, close)."""
from __future__ import annotations

import time
from typing import Any


class EventWriter:
    def __init__(self, logdir: str, purge_step: int | None = None, wall_time: float | None = None):
        from tensorboard.compat.proto import event_pb2
        from tensorboard.summary.writer.event_file_writer import EventFileWriter
        self._pb = event_pb2
        self._w = EventFileWriter(logdir, flush_secs=30)
        self.wall_time = wall_time       # export: the event's own time, set per record
        if purge_step is not None:       # what torch's SummaryWriter writes for purge_step
            self._add(event_pb2.Event(step=int(purge_step),
                                      session_log=event_pb2.SessionLog(status=event_pb2.SessionLog.START)))

    def _add(self, ev: Any) -> None:
        ev.wall_time = self.wall_time if self.wall_time is not None else time.time()
        self._w.add_event(ev)

    def add_scalar(self, tag: str, value: float, step: int) -> None:
        from tensorboard.compat.proto.summary_pb2 import Summary
        self._add(self._pb.Event(step=int(step), summary=Summary(value=[Summary.Value(tag=tag, simple_value=float(value))])))

    def add_text(self, tag: str, text: str, step: int) -> None:
        from tensorboard.compat.proto.summary_pb2 import Summary, SummaryMetadata
        from tensorboard.compat.proto.tensor_pb2 import TensorProto
        from tensorboard.compat.proto.tensor_shape_pb2 import TensorShapeProto
        from tensorboard.plugins.text.plugin_data_pb2 import TextPluginData
        meta = SummaryMetadata(plugin_data=SummaryMetadata.PluginData(
            plugin_name="text", content=TextPluginData(version=0).SerializeToString()))
        tensor = TensorProto(dtype="DT_STRING", string_val=[text.encode("utf-8")],
                             tensor_shape=TensorShapeProto(dim=[TensorShapeProto.Dim(size=1)]))
        summary = Summary(value=[Summary.Value(tag=tag + "/text_summary", metadata=meta, tensor=tensor)])
        self._add(self._pb.Event(step=int(step), summary=summary))

    def flush(self) -> None:
        self._w.flush()

    def close(self) -> None:
        self._w.close()

    def get_logdir(self) -> str:
        return self._w.get_logdir()
