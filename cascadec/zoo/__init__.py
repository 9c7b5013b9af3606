"""The model zoo: tiny Qwen2 models trained on a generated arithmetic task with a ladder.

``task`` (pure Python) samples problems and targets; ``tokenizer``, ``train`` and ``evaluate``
import torch/transformers/vLLM lazily; ``cli.zoo_app`` is mounted as ``cascadec zoo``.
"""

from cascadec.zoo.task import LADDER, ZooProblem, sample_problems, target_text

__all__ = ["LADDER", "ZooProblem", "sample_problems", "target_text"]
