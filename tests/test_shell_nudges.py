"""The cause question after Resolve, answered in `dora-bot shell`: its buttons are shown in the
thread and pressing one records the answer (the shell drives every message with buttons)."""

from __future__ import annotations

from tests.test_shell import shell

SCRIPT = [
    "/deploy checkout 1.4.2",
    "1",  # Create checkout: a new service is confirmed first
    "/incident declare sev2 checkout Checkout 5xx started=now",
    "/incident resolve INC-1 fixed",
]


def test_the_cause_question_in_the_thread_has_buttons_the_shell_can_press(tmp_path):
    (tmp_path / "probe").mkdir()
    (tmp_path / "real").mkdir()
    probe = shell(tmp_path / "probe", "\n".join(SCRIPT + [""]))
    question = probe[probe.index("was resolved with no known cause"):]
    assert "Caused by D-1" in question and "Not caused by a deploy" in question, question
    number = question.split("Caused by D-1")[0].rsplit("[", 1)[1].split("]")[0]

    out = shell(tmp_path / "real", "\n".join(SCRIPT + [number, "/dora checkout", ""]))
    after = out[out.rindex("you> " + number):]
    assert "Caused by D-1" in after and "@U0SHELL" in after, after
    assert "Change fail rate: 100.0% (1 of 1)" in after, after
