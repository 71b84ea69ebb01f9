"""How the tables store the model's state dataclasses (model/state.py), and the record between
the scoring and threshold agents.

Each table value is the JSON object of its dataclass (``StateCodec``); keys it does not know --
such as the ``__faust`` key of the Faust records older versions wrote -- are ignored on reading,
so a changelog written before still recovers.
"""
import faust
import orjson
from faust.serializers import codecs

from app import jsonio
from model.state import RateState, SourceIncidents, SourceMemory, Stats, from_dict, to_dict


class StateCodec(codecs.Codec):
    """A Faust codec for one state dataclass: its fields as a JSON object."""

    def __init__(self, cls=None, **kwargs):
        super().__init__(cls=cls, **kwargs)
        self.cls = cls

    def _dumps(self, state):
        try:
            return orjson.dumps(state)   # a dataclass, without a copy
        except TypeError:                # what orjson refuses (integers past 64 bits): app/jsonio.py
            return jsonio.dumps(to_dict(state))

    def _loads(self, data):
        return from_dict(self.cls, jsonio.loads(data))


STATS = StateCodec(Stats)
MEMORY = StateCodec(SourceMemory)
RATE = StateCodec(RateState)
BOOK = StateCodec(SourceIncidents)


class ScoredBatch(faust.Record, serializer="json"):
    """Scored lines of one source, in log-topic offset order (``model.online.scored_line`` each):
    one message per source and micro-batch between the scoring agent and the threshold agent."""
    source: str
    lines: list
