"""Real problem sets shipped with cascadec, usable by name wherever a data file is accepted.

``--data gsm8k`` (or ``math500``, ``aime24``, ``amc23``) and ``cascadec.load_data("gsm8k")``
read the file shipped beside this module: byte-identical copies of the publishers' files
(``sha256`` below; provenance and licences in ``SOURCES.md`` and the ``LICENSE.*`` files here).
A name is used only when no file of that name exists, so a local file always wins.

Ids: a set with an id column keeps it (``unique_id`` for MATH-500, ``id`` for AIME/AMC); GSM8K
has none, so its id is the problem's 0-based row number in ``test.jsonl`` as text (``"0"`` …
``"1318"``) — the ids the published GSM8K output releases use (Faithful-CoT's ``id``, RouteLLM's
and grade-school-math's row order). Loaded by name, such a set gets that ``id`` column added, so
a subset keeps the right ids.

This module sits below the runtime: no pandas, nothing but ``cascadec.errors``.
"""

from __future__ import annotations

import difflib
from dataclasses import asdict, dataclass
from pathlib import Path

from cascadec.errors import InputFileError

__all__ = ["DATASETS", "Dataset", "find", "get", "names", "path_of", "suggest"]

HERE = Path(__file__).resolve().parent


@dataclass(frozen=True)
class Dataset:
    name: str  # what --data accepts
    title: str
    description: str
    file: str  # beside this module
    rows: int
    sha256: str  # of the shipped file = of the publisher's file at `commit`
    licence: str
    licence_file: str
    repository: str  # github owner/name
    path: str  # inside the repository
    commit: str
    problem_column: str
    gold_column: str
    id_column: str | None  # None: the 0-based row number, as text
    difficulty_column: str | None = None

    @property
    def id_rule(self) -> str:
        return f"column {self.id_column!r}" if self.id_column else "row number (0-based, as text)"

    def as_dict(self) -> dict:
        return {**asdict(self), "id_rule": self.id_rule, "source": self.source}

    @property
    def source(self) -> str:
        return f"github.com/{self.repository} {self.path} @ {self.commit[:12]}"


_QWEN = "a45202bd16f1ec06f433442dc1152d0074773465"

DATASETS: dict[str, Dataset] = {
    d.name: d
    for d in (
        Dataset(
            name="gsm8k",
            title="GSM8K test",
            description="grade-school math word problems; gold after '####' in the solution",
            file="gsm8k.jsonl",
            rows=1319,
            sha256="3730d312f6e3440559ace48831e51066acaca737f6eabec99bccb9e4b3c39d14",
            licence="MIT",
            licence_file="LICENSE.grade-school-math",
            repository="openai/grade-school-math",
            path="grade_school_math/data/test.jsonl",
            commit="3101c7d5072418e28b9008a6636bde82a006892c",
            problem_column="question",
            gold_column="answer",
            id_column=None,
        ),
        Dataset(
            name="math500",
            title="MATH-500",
            description="the prm800k 500-problem test split of MATH; subject and level (1-5) kept",
            file="math500.jsonl",
            rows=500,
            sha256="35dc41080a3680858b27fa7e0533d2d547825316fc5dafe5d316f4ccc5a06132",
            licence="MIT",
            licence_file="LICENSE.math-evaluation-harness",
            repository="ZubinGou/math-evaluation-harness",
            path="data/math_oai/test.jsonl",
            commit="db77bc6bb2a17c90ed2d63e88ebd8c40a82858c5",
            problem_column="problem",
            gold_column="answer",
            id_column="unique_id",
            difficulty_column="level",
        ),
        Dataset(
            name="aime24",
            title="AIME 2024",
            description="AIME 2024 I and II; integer answers 0-999",
            file="aime24.jsonl",
            rows=30,
            sha256="af2b8bd2aa911b6333ad0df32f3ca05c7ae8ed10f1731f4372c8ae26990bf7ac",
            licence="MIT",
            licence_file="LICENSE.qwen2.5-math",
            repository="QwenLM/Qwen2.5-Math",
            path="evaluation/data/aime24/test.jsonl",
            commit=_QWEN,
            problem_column="problem",
            gold_column="answer",
            id_column="id",
        ),
        Dataset(
            name="amc23",
            title="AMC 2023",
            description="AMC 12 2023 (A and B), the 40 problems Qwen2.5-Math evaluates on",
            file="amc23.jsonl",
            rows=40,
            sha256="43707e1ca784602d8479de24ee8ce36609dbebc46dd152b0b12a46611aa898a4",
            licence="MIT",
            licence_file="LICENSE.qwen2.5-math",
            repository="QwenLM/Qwen2.5-Math",
            path="evaluation/data/amc23/test.jsonl",
            commit=_QWEN,
            problem_column="problem",
            gold_column="answer",
            id_column="id",
        ),
    )
}


def names() -> list[str]:
    return list(DATASETS)


def find(name: str) -> Dataset | None:
    """The shipped set called ``name`` (case-insensitive), or None."""
    return DATASETS.get(str(name).strip().lower())


def get(name: str) -> Dataset:
    d = find(name)
    if d is None:
        raise InputFileError(f"no shipped problem set {name!r}{suggest(name)}", where=name)
    return d


def path_of(name: str) -> Path:
    return HERE / get(name).file


def suggest(name: str) -> str:
    """``; shipped sets: …`` with a did-you-mean when one is close."""
    close = difflib.get_close_matches(str(name).strip().lower(), names(), n=1, cutoff=0.6)
    hint = f" (did you mean {close[0]}?)" if close else ""
    return f"{hint}; shipped problem sets: {', '.join(names())} (cascadec data list)"
