"""The demo course runs to completion in remission."""

from iptflow.engine.replay import Line, replay_lines
from iptflow.research.demo import demo_events


def test_demo_course_completes_in_remission():
    events = demo_events()
    result = replay_lines(Line(i, event=e) for i, e in enumerate(events, start=1))
    assert result.state == "completed"
    assert result.sessions_held == 12
    assert result.rejected == []
    assert result.outcome["status"] == "remission"
    assert result.exit_status == 0
