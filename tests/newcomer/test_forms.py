"""The declare form in the shell, and the checks a newcomer's slips meet: what the form shows, a
suspected deploy made after the incident began, a rollback to a version that never ran."""

from __future__ import annotations

from tests.newcomer.helpers import shell


def test_the_declare_form_shows_defaults_and_hints_and_asks_for_the_service_once(tmp_path):
    out = shell(tmp_path, "\n".join([
        "/deploy payments 7.0",
        "/incident",
        "Ledger lagging",
        "payments",  # picked from the list: no "…or type its name" after it
        "",          # severity: the default, shown in the prompt
        "1h",        # started an hour ago: before D-1, which was deployed just now
        "1",         # suspected deploy: D-1
        "",
    ]))
    form = out[out.index("[modal]"):]
    assert "…or type its name" not in form and "For a service not in the list" not in form
    assert "Severity [number or name, Enter: SEV2: major, degraded for many]: " in form
    assert "How long ago (15m, 2h) or an ISO time (2026-11-24T09:30Z). Empty: now." in form
    assert "Started (optional) [e.g. 15m, Enter to skip]: 1h" in form
    assert "Suspected deploy D-1 7.0 · [!] deployed 1h after the incident started" in out
    assert "INC-1 LEDGER LAGGING" in out and "SEV2" in out


def test_a_cause_deployed_after_the_start_is_taken_with_a_note(tmp_path):
    out = shell(tmp_path, "/deploy checkout 1.0\n/incident declare sev2 checkout Down started=30m cause=latest\n")
    assert "Declared INC-1." in out and "Note: D-1 was deployed 30m after the incident started; check the cause." in out
    assert "Caused by D-1 1.0 · [!] deployed 30m after the incident started" in out
    on_time = shell(tmp_path, "/incident declare sev3 checkout Slow cause=D-1\n")
    assert "Declared INC-2." in on_time and "Note:" not in on_time


def test_a_rollback_to_a_version_never_deployed_is_refused(tmp_path):
    out = shell(tmp_path, "\n".join([
        "/deploy checkout 1.0",
        "/deploy checkout 1.1",
        "/deploy rollback checkout to=0.0.0-nonexistent",
        "/deploy list checkout",
        "/deploy rollback checkout to=1.0",
        "",
    ]))
    assert "`checkout` never ran version `0.0.0-nonexistent` in production before D-2. Versions it ran before: 1.0." in out
    listed = out[out.index("you> /deploy list checkout"):out.index("you> /deploy rollback checkout to=1.0")]
    assert "D-3" not in listed
    assert "Recorded D-3" in out or "Rollback D-3" in out
