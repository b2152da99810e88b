"""The typo flow in ``dora-bot shell``: the question, its buttons by number, nothing stored before."""

from __future__ import annotations

from tests.test_shell import shell


def test_a_typo_in_the_shell_asks_and_the_pressed_button_records_on_the_known_service(tmp_path):
    out = shell(tmp_path, "\n".join([
        "/deploy checkout 1.0",
        "1",  # Create checkout
        "/deploy chekout 1.1",
        "/deploy list",  # still one deploy: the question stored nothing
        "2",  # Use checkout (the shell's button numbers stay with their buttons)
        "/deploy list",
        "/dora team set payments checkout",
        "/dora team=payments days=7",
        "",
    ]))
    assert "`checkout` is not a known service yet" in out and "[1] Create checkout" in out
    assert "`chekout` is not a known service — did you mean `checkout`?" in out
    assert "[2] Use checkout  [3] Create chekout" in out
    first_list = out.split("you> /deploy list")[1].split("you>")[0]
    assert first_list.count("D-") == 1, first_list
    assert "Recorded D-2: `checkout` 1.1" in out and "`chekout` 1.1" not in out
    assert "created team payments: `checkout`" in out and "DORA FIVE KEYS: TEAM PAYMENTS" in out
