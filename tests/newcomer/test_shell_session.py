"""`dora-bot shell` as a newcomer meets it: the README's example on the demo data, acting as a
user, raw payloads, forms that can be cancelled, buttons that keep their numbers, typos."""

from __future__ import annotations

import json
import re

from tests.newcomer.helpers import ROOT, Terminal, run, shell


def readme_shell_example() -> str:
    """The scripted session of the README, as a person would paste it."""
    text = (ROOT / "README.md").read_text()
    lines = [line for line in text.splitlines() if line.startswith("printf ") and line.endswith("| dora-bot shell")]
    assert len(lines) == 1, lines
    return lines[0]


def test_the_readme_shell_example_is_right_on_the_demo_database(tmp_path):
    import subprocess

    from tests.newcomer.helpers import clean_env

    assert run(tmp_path, "demo").returncode == 0
    out = subprocess.run(["bash", "-c", readme_shell_example()], capture_output=True, text=True, cwd=tmp_path,
                         env=clean_env(tmp_path), timeout=240)
    assert out.returncode == 0, out.stderr
    recorded = re.search(r"Recorded (D-\d+): `checkout` 1\.4\.2", out.stdout)
    assert recorded, out.stdout
    # the incident is linked to the deploy just recorded, not to one from months ago
    assert f"Caused by {recorded.group(1)} 1.4.2" in out.stdout
    assert "State Acknowledged" in out.stdout and "Acknowledged by @U0SHELL" in out.stdout
    assert "DORA FIVE KEYS: CHECKOUT" in out.stdout and "Deployment frequency" in out.stdout


def test_user_is_the_one_acting_and_admin_commands_check_it(tmp_path):
    script = "/dora alerts #incidents\n"
    refused = shell(tmp_path, script, DORA_ADMINS="UADMIN1")
    assert "Only the admins listed in DORA_ADMINS" in refused
    allowed = shell(tmp_path, script, "--user", "UADMIN1", DORA_ADMINS="UADMIN1")
    assert "@UADMIN1 set incident alerts to go to #incidents" in allowed
    declared = shell(tmp_path, "/incident declare sev3 web Slow pages\n", "--user", "UADMIN1")
    assert "Declared by @UADMIN1" in declared
    bad = run(tmp_path, "shell", "--user", "not a user", stdin="")
    assert bad.returncode == 2 and "--user" in bad.stderr and "Traceback" not in bad.stderr


def test_raw_prints_the_block_kit_json_the_app_sends(tmp_path):
    out = shell(tmp_path, "/deploy checkout 1.2.3\n", "--raw")
    raw = [line.split(": ", 1)[1] for line in out.splitlines() if line.startswith("  raw chat.postMessage: ")]
    assert raw, out
    card = json.loads(raw[0])
    assert card["channel"] == "C0SHELL" and card["blocks"][0]["type"] == "section" and "Deploy D-1" in card["blocks"][0]["text"]["text"]
    assert "raw reply: " in out
    assert "raw " not in shell(tmp_path, "/deploy checkout 1.2.4\n")


def test_a_form_is_cancelled_by_typing_cancel_and_the_shell_goes_on(tmp_path):
    out = shell(tmp_path, "\n".join(["/incident", "Ledger lagging", "cancel", "/incident list", ""]))
    assert "(type `cancel` to drop the form)" in out
    assert "form cancelled: nothing was submitted" in out
    assert "No open incidents" in out


def test_an_empty_answer_to_a_required_field_offers_cancel(tmp_path):
    out = shell(tmp_path, "\n".join(["/incident", "", "cancel", ""]))
    assert "(required: type an answer, or `cancel` to drop the form)" in out
    assert "form cancelled" in out


def test_buttons_keep_their_numbers_and_a_card_in_two_channels_is_numbered_once(tmp_path):
    out = shell(tmp_path, "\n".join([
        "/incident declare sev2 checkout Checkout 5xx",
        "1",   # Acknowledge
        "1",   # gone from the card now
        "4",   # still Post update: opens its form
        "rolled back, watching",
        "",
    ]))
    declared, _, after_ack = out.partition("you> 1\n")
    card = "[1] Acknowledge  [2] Mitigated  [3] Resolve  [4] Post update  [5] I'm the lead  [6] Cancel"
    # the card goes to #incidents and to #shell: the same buttons, numbered once
    assert declared.count(card) == 2
    assert "[7]" not in out and "[8]" not in out
    assert after_ack.count("[2] Mitigated  [3] Resolve  [4] Post update  [5] I'm the lead  [6] Cancel") >= 2  # kept after the update
    assert "Button 1 (Acknowledge) is no longer shown. Buttons on screen: 2, 3, 4, 5, 6." in out
    assert "[modal] Update INC-1" in out and "Update from @U0SHELL: rolled back, watching" in out
    assert "Resolved by" not in out


def test_an_unknown_command_gets_one_line_not_bolts_developer_hints(tmp_path):
    result = run(tmp_path, "shell", stdin="/deploi checkout 1.2\n")
    assert result.returncode == 0
    assert "unknown command /deploi, try /deploy, /incident, /dora" in result.stdout
    assert "@app.command" not in result.stdout + result.stderr


def test_digests_sent_in_the_shell_leave_no_temp_folder(tmp_path):
    tmp = tmp_path / "tmp"
    tmp.mkdir()
    out = shell(tmp_path, "/deploy checkout 1.2.3\n/dora digest add #shell\n/dora digest send 1\n", TMPDIR=str(tmp))
    saved = re.search(r"saved as (\S+\.png)", out)
    assert saved and saved.group(1).startswith(str(tmp)), out
    assert list(tmp.iterdir()) == []


def test_on_a_terminal_lines_can_be_edited_recalled_and_ctrl_c_cancels_only_the_form(tmp_path):
    state = tmp_path / "state"
    term = Terminal(tmp_path, XDG_STATE_HOME=str(state))
    try:
        term.expect("you> ")
        term.send("/deploy checkout 1.0\r")
        term.expect("you> ")
        term.send("/deploy list\r")
        term.expect("you> ")
        term.send("/incident\r")
        term.expect("What is happening?")
        term.reading()  # readline waits for a key (the prompt appears a moment before)
        term.send("\x03")  # Ctrl-C inside the form
        term.expect("form cancelled")
        term.expect("you> ")
        term.send("\x1b[A\x1b[A\r")  # Up twice: back to `/deploy list` (form answers are not in the history)
        assert "D-1" in term.expect("you> ")  # /deploy list ran again
        term.send("/dora checkotu\x1b[D\x7f\x05t\r")  # a typo fixed with Left, Backspace and Ctrl-E: /dora checkout
        shown = term.expect("you> ")
        assert "DORA FIVE KEYS: CHECKOUT" in shown and "No service called" not in shown
        assert term.proc.poll() is None  # Ctrl-C did not end the shell
    finally:
        code = term.close()
    assert code == 0
    history = (state / "dora-bot" / "shell_history").read_text()
    assert "/deploy list" in history and "/incident" in history
    assert not any(p.name.endswith("history") for p in tmp_path.iterdir())


def test_the_readme_metrics_examples_run_on_the_demo_database(tmp_path):
    import shlex

    text = (ROOT / "README.md").read_text()
    block = text[text.index("prints the five keys for the organisation"):]
    block = block[block.index("```bash\n") + 8:]
    examples = [line.split("#")[0].strip() for line in block[:block.index("```")].splitlines() if line.startswith("dora-bot metrics")]
    assert len(examples) == 3, examples
    assert run(tmp_path, "demo").returncode == 0
    for example in examples:
        out = run(tmp_path, *shlex.split(example)[1:])
        assert out.returncode == 0, (example, out.stderr)
        shown = out.stdout
        if "--json" in example:
            report = json.loads(shown)
            assert report["deployment_frequency"]["tier"] and report["lead_time"]["samples"] > 0, example
        else:  # real numbers on the demo data, not a table of n/a
            assert "elite" in shown and "Deployment frequency" in shown, (example, shown)
