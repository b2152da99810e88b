"""Errors in Slack read in people's words, with one hint line (the usage is what `help` shows)."""

from __future__ import annotations

from tests.newcomer.helpers import shell


def replies(out: str) -> dict[str, list[str]]:
    """What each typed line got back: the lines printed until the next prompt."""
    answers: dict[str, list[str]] = {}
    current = None
    for line in out.splitlines():
        if line.startswith("you> "):
            current = line[5:]
            answers[current] = []
        elif current is not None:
            answers[current].append(line)
    return answers


def test_errors_name_things_not_fields_and_add_one_hint_line(tmp_path):
    out = shell(tmp_path, "\n".join([
        "/deploy checkout 1.2 commit=zzz",
        "/incident declare sev2 checkout Down cause=D-999",
        "/deploy checkout 1.3 fixes=INC-99",
        "/deploy rollback",
        "/dora checkout web",
        "",
    ]))
    got = replies(out)
    assert got["/deploy checkout 1.2 commit=zzz"] == [
        "[only you]",
        "  [!] commit `zzz` is not a commit sha (4 to 64 hex digits)",
        "    `/deploy <service> <version> [env=<environment>] [commit=<sha>] [committed=<time>] [url=<link>] [fixes=<INC-n>] [note...]`"
        " · `/deploy help` for more",
    ]
    assert got["/incident declare sev2 checkout Down cause=D-999"][1] == "  [!] no deploy `D-999`"
    assert got["/deploy checkout 1.3 fixes=INC-99"][1] == "  [!] no incident `INC-99`"
    assert got["/deploy rollback"][2] == (
        "    `/deploy rollback <service> [to=<version>]` record a rollback to the previous good version · `/deploy help` for more"
    )
    assert got["/dora checkout web"][1].startswith("  [!] I read `checkout` as a service; `web` is unexpected")
    for answer in got.values():
        text = "\n".join(answer)
        assert "commits[0]" not in text and "caused_by" not in text and "is stored" not in text
        assert len(answer) <= 3, answer  # the reply, its one hint: never the whole usage
    assert "Recorded" not in out and "Declared" not in out


def test_digest_help_is_help(tmp_path):
    got = replies(shell(tmp_path, "/dora digest help\n"))["/dora digest help"]
    text = "\n".join(got)
    assert "[!]" not in text and "/dora digest add <#channel>" in text and "/dora digest send <id>" in text
