"""The closed vocabularies of a run: phases, decisions, stop reasons, finish reasons.

They are recorded in journals and parquet tables and read back by other tools, so each is an
enum with string values (``Decision.ESCALATE == "escalate"``) rather than a free string. The
pure decision function (``runtime/decide.py``) and the typed records
(:mod:`cascadec.runtime.records`) both take them from here.
"""

from __future__ import annotations

from enum import StrEnum


class Phase(StrEnum):
    """Why samples were asked on a tier: its planned k (in rounds), a retry, an exploration."""

    SAMPLE = "sample"
    RETRY = "retry"
    EXPLORE = "explore"


class Decision(StrEnum):
    """What a tier decided once its samples were in (recorded once per tier that ran)."""

    STOP = "stop"  # confident enough, or the last tier
    ESCALATE = "escalate"  # the next tier runs
    SKIP_TO_TOP = "skip_to_top"  # exploration: straight to the last tier
    BUDGET = "budget"  # the problem's budget ended the tier before it could decide


class StopReason(StrEnum):
    """Why a problem ended."""

    CONFIDENT = "confident"
    LAST_TIER = "last_tier"
    BUDGET = "budget"


class FinishReason(StrEnum):
    """Why one sample's generation ended (the engine's word, plus our own abort)."""

    STOP = "stop"  # an end token or a stop string: the sample is complete
    LENGTH = "length"  # max_tokens reached: truncated, it never votes
    ABORT = "abort"  # aborted mid-generation (a stopped trace or a decided vote): never votes


class RunStatus(StrEnum):
    RUNNING = "running"
    COMPLETE = "complete"
