"""Reads a TensorBoard event file with tensorboard's own loader (the one `tensorboard --logdir` uses).

params: {"path": event file}. Output params: {"events": [{"wall_time", "step", "file_version", "scalars": {tag: value}}]}.
The loader checks both CRCs of every record and raises on a corrupt one.
"""

from oracle_io import read_inputs, write_outputs
from tensorboard.backend.event_processing.event_file_loader import RawEventFileLoader
from tensorboard.compat.proto import event_pb2

params, _ = read_inputs()
events = []
for raw in RawEventFileLoader(params["path"], detect_file_replacement=False).Load():
    event = event_pb2.Event.FromString(raw)
    events.append(
        {
            "wall_time": event.wall_time,
            "step": event.step,
            "file_version": event.file_version,
            "scalars": {v.tag: v.simple_value for v in event.summary.value},
        }
    )
write_outputs({}, {"events": events})
