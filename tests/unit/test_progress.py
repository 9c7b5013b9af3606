"""Progress bars say what is happening, including the long model load before the first request."""

import io

from rich.console import Console

from cascadec.runtime.progress import RichReporter


def test_bar_says_loading_until_the_model_is_up():
    reporter = RichReporter(Console(file=io.StringIO(), force_terminal=False))
    reporter.stage("m", "0")
    reporter.add("m", 3)
    reporter.loading("m", done=False)
    task = reporter.progress.tasks[0]
    assert "loading" in task.description
    reporter.loading("m", done=True)
    assert task.description == "tier 0 · m"
    reporter.advance("m", 3)
    assert task.completed == 3 and task.total == 3
    reporter.close()
