"""The slash-command grammar: text in, a typed command out (or a UsageError saying what is wrong).

Pure parsing, no I/O: times stay as text here and are resolved by the listener with the clock.
``key=value`` options may appear anywhere; Slack's escapes (``<#C123|name>``, ``<https://x|x>``,
``<@U123>``) are understood.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

from bot.core.errors import DoraError, ValidationError
from bot.core.numbers import is_digits, parse_int
from bot.core.timeutil import WEEKDAYS

DEPLOY_USAGE = """\
`/deploy <service> <version> [env=<environment>] [commit=<sha>] [committed=<time>] [url=<link>] [fixes=<INC-n>] [note...]` \
record a deploy (`fixes=` links the incident it fixes: rework)
`/deploy hotfix <service> <version> [...same options]` record an unplanned deploy (rework) with no named incident
`/deploy list [service] [env=<environment>] [limit=N]` recent deploys
`/deploy fail <D-n> [reason...]` mark a deploy as a change failure
`/deploy rollback <service> [to=<version>]` record a rollback to the previous good version
`/deploy freeze <service|all> [until=<time>] [reason...]` · `/deploy unfreeze <service|all>` · \
`/deploy freezes` the deploy gate (`until=2h` or ISO-8601)
`/deploy help` this help
Times: ISO-8601 (`2026-11-24T09:30Z`) or how long ago (`15m`, `3h`, `2d`)."""

INCIDENT_USAGE = """\
`/incident` open the declare form
`/incident declare <sev1|sev2|sev3|sev4> <service> <title...> [started=<time>] [cause=<D-n>|latest]` (or just `/incident sev2 checkout ...`)
`/incident list` open incidents · `/incident show <INC-n>`
`/incident ack <INC-n>` · `/incident update <INC-n> <text...>` · `/incident cause <INC-n> <D-n>`
`/incident mitigate <INC-n> [note...]` impact is over (time to restore ends here) · `/incident resolve <INC-n> [note...]`
`/incident cancel <INC-n> <reason...>` a false alarm: counted in no metric
`/incident severity <INC-n> <sev1..sev4>` · `/incident lead <INC-n> [@user]` (default: you) · `/incident note <INC-n> <text...>`
`/incident followup <INC-n> [@owner] <text...>` · `/incident followups [mine]` · `/incident channel <INC-n>` · \
`/incident postmortem <INC-n>`
`/incident help` this help"""

DORA_USAGE = """\
`/dora [service] [days=N]` DORA's five keys (default: all services, 30 days); `/dora team=<team>` a team's services pooled
`/dora explain <df|lt|cfr|rework|ttr> [service] [days=N]` what was counted and why (`team=<team>` too)
`/dora alerts <#channel>` where incident alerts go (admins)
`/dora digest add <#channel> [weekly|daily] [day=mon] [time=09:00] [tz=Area/City] [service=...]` or `team=...` \
(admins; `fri 16:30 Europe/Berlin` works too)
`/dora digest list` · `/dora digest remove <id>` (admins) · `/dora digest send <id>` (now)
`/dora watch add <metric><op><value> [service=...] [days=30] <#channel>` post when a number crosses a line: \
`cfr>15%`, `lt>2d`, `ttr>4h`, `df<1/day`, `rework>10%` (admins)
`/dora watch list` · `/dora watch remove <id>` (admins)
`/dora team set <team> <service>[,<service>...]` (admins) · `/dora team list` · `/dora team remove <team>` (admins)
`/dora service rename <old> <new>` · `/dora service merge <from> <into>` (admins; fixes a history split by a typo)
`/dora help` this help"""

USAGE = {"deploy": DEPLOY_USAGE, "incident": INCIDENT_USAGE, "dora": DORA_USAGE}


class UsageError(DoraError):
    """The command text could not be understood; ``usage`` is shown with the message."""

    def __init__(self, message: str, *, command: str) -> None:
        super().__init__(message)
        self.command = command
        self.usage = USAGE[command]


_CHANNEL_RE = re.compile(r"^<#([CGD][A-Z0-9]+)(?:\|([^>]*))?>$")
_LINK_RE = re.compile(r"^<(https?://[^|>]+)(?:\|[^>]*)?>$")
_USER_RE = re.compile(r"^<@([UW][A-Z0-9]+)(?:\|[^>]*)?>$")
_OPTION_RE = re.compile(r"^([a-z_]+)=(.*)$", re.DOTALL)
_DEPLOY_REF_RE = re.compile(r"^(?:d-?)?[0-9]{1,18}$", re.IGNORECASE)
_INCIDENT_REF_RE = re.compile(r"^(?:inc-?)?[0-9]{1,18}$", re.IGNORECASE)


def unescape(token: str) -> str:
    """Slack wraps links and mentions in angle brackets: keep the useful part."""
    if m := _LINK_RE.match(token):
        return m.group(1)
    return token.replace("&lt;", "<").replace("&gt;", ">").replace("&amp;", "&")


_TEXT_LINK_RE = re.compile(r"<(https?://[^|>]+)(?:\|[^>]*)?>")
_TEXT_CHANNEL_RE = re.compile(r"<#([CGD][A-Z0-9]+)(?:\|([^>]*))?>")
_TEXT_USER_RE = re.compile(r"<@([UW][A-Z0-9]+)(?:\|([^>]*))?>")
_TOKEN_RE = re.compile(r"(?:[^\s<]|<[^>]*>)+")


def unescape_text(text: str) -> str:
    """Free text as the person typed it: links as URLs, no HTML entities, mentions as ``<@U123>``.

    Every way in (slash command, modal, API) then stores the same characters for the same text;
    mentions stay Slack tokens so cards can still show them as mentions.
    """
    text = _TEXT_LINK_RE.sub(r"\1", text)
    text = _TEXT_CHANNEL_RE.sub(lambda m: f"<#{m.group(1)}>", text)
    text = _TEXT_USER_RE.sub(lambda m: f"<@{m.group(1)}>", text)
    return text.replace("&lt;", "<").replace("&gt;", ">").replace("&amp;", "&")


def tokens(text: str) -> list[str]:
    """Whitespace-separated words, keeping Slack's ``<...|label with spaces>`` in one piece."""
    return _TOKEN_RE.findall(text)


@dataclass(frozen=True)
class ChannelRef:
    """A channel as typed: an id from ``<#C123|name>``, or a ``#name`` to look up."""

    id: str | None = None
    name: str | None = None

    def mention(self) -> str:
        return f"<#{self.id}>" if self.id else f"#{self.name}"


def parse_channel(token: str, *, command: str) -> ChannelRef:
    if m := _CHANNEL_RE.match(token):
        return ChannelRef(id=m.group(1), name=m.group(2) or None)
    if re.match(r"^#[a-z0-9][a-z0-9._-]{0,79}$", token):
        return ChannelRef(name=token[1:])
    raise UsageError(f"`{token}` is not a channel; use #name or pick one with #", command=command)


def _split(text: str, *, command: str, options: set[str], stop_after: int | None = None) -> tuple[list[str], dict[str, str]]:
    """Positional words and known ``key=value`` options.

    With ``stop_after``, the words after that many positional ones are free text (a note, a
    title). A ``word=value`` that is not a known option is refused while the positional words are
    being read and as the first word after them (``/deploy checkout 1.2 enviroment=staging`` is a
    typo, not a note); inside free text it is just text.
    """
    words: list[str] = []
    opts: dict[str, str] = {}
    free_text_started = False
    for raw in tokens(text):
        m = _OPTION_RE.match(raw)
        if m and m.group(1) in options:
            key, value = m.group(1), unescape(m.group(2))
            if not value:
                raise UsageError(f"`{key}=` needs a value", command=command)
            if key in opts:
                raise UsageError(f"`{key}=` is given twice", command=command)
            opts[key] = value
            continue
        if m and not free_text_started and not raw.startswith("<") and re.match(r"^[a-z_]+$", m.group(1)):
            known = ", ".join(f"{o}=" for o in sorted(options)) or "none"
            raise UsageError(f"unknown option `{m.group(1)}=` (known: {known})", command=command)
        if stop_after is not None and len(words) >= stop_after:
            free_text_started = True
            words.append(unescape_text(raw))
        else:
            words.append(unescape(raw))
    return words, opts


def _int(value: str, *, name: str, lo: int, hi: int, command: str) -> int:
    try:
        return parse_int(value, field=name, lo=lo, hi=hi)
    except ValidationError:
        shown = value if len(value) <= 40 else value[:37] + "..."
        raise UsageError(f"`{name}={shown}` must be a whole number from {lo} to {hi}", command=command) from None


def _deploy_ref(token: str, *, command: str) -> str:
    if not _DEPLOY_REF_RE.match(token):
        raise UsageError(f"`{token}` is not a deploy; use D-<number>, like D-12", command=command)
    return "D-" + re.sub(r"\D", "", token)


def _incident_ref(token: str, *, command: str) -> str:
    if not _INCIDENT_REF_RE.match(token):
        raise UsageError(f"`{token}` is not an incident; use INC-<number>, like INC-7", command=command)
    return "INC-" + re.sub(r"\D", "", token)


# --- /deploy ------------------------------------------------------------------------------

@dataclass(frozen=True)
class Help:
    command: str


@dataclass(frozen=True)
class DeployRecord:
    service: str
    version: str
    environment: str = "production"
    commit: str | None = None
    committed: str | None = None
    url: str | None = None
    note: str | None = None
    fixes: str | None = None  # INC-n: the incident this deploy fixes
    hotfix: bool = False  # /deploy hotfix: rework with no named incident


@dataclass(frozen=True)
class DeployList:
    service: str | None = None
    environment: str | None = None
    limit: int = 10


@dataclass(frozen=True)
class DeployFail:
    ref: str
    reason: str | None = None


@dataclass(frozen=True)
class DeployRollback:
    service: str
    to: str | None = None


@dataclass(frozen=True)
class DeployFreeze:
    target: str  # a service or "all"
    until: str | None = None  # as typed; bot.services.gate.parse_until reads it
    reason: str | None = None


@dataclass(frozen=True)
class DeployUnfreeze:
    target: str


@dataclass(frozen=True)
class DeployFreezes:
    pass


def _parse_freeze(head: str, rest: str, cmd: str):
    if head == "freezes":
        if rest:
            raise UsageError("`/deploy freezes` takes nothing more; it lists the freezes that hold", command=cmd)
        return DeployFreezes()
    if head == "unfreeze":
        args, _ = _split(rest, command=cmd, options=set())
        if len(args) != 1:
            raise UsageError("`/deploy unfreeze` needs one service or `all`, like `/deploy unfreeze checkout`", command=cmd)
        return DeployUnfreeze(target=args[0])
    args, opts = _split(rest, command=cmd, options={"until"}, stop_after=1)
    if not args:
        raise UsageError("`/deploy freeze` needs a service or `all`, like `/deploy freeze all until=2d release week`", command=cmd)
    return DeployFreeze(target=args[0], until=opts.get("until"), reason=" ".join(args[1:]) or None)


def parse_deploy_command(text: str):
    cmd = "deploy"
    words = text.split()
    if not words or words[0].lower() in ("help", "-h", "--help"):
        return Help(cmd)
    head = words[0].lower()
    rest = text.strip()[len(words[0]):].strip()
    if head == "list":
        args, opts = _split(rest, command=cmd, options={"env", "limit"})
        if len(args) > 1:
            raise UsageError(f"`/deploy list` takes at most one service, got `{' '.join(args)}`", command=cmd)
        limit = _int(opts["limit"], name="limit", lo=1, hi=50, command=cmd) if "limit" in opts else 10
        return DeployList(service=args[0] if args else None, environment=opts.get("env"), limit=limit)
    if head == "fail":
        args = rest.split(maxsplit=1)
        if not args:
            raise UsageError("`/deploy fail` needs a deploy, like `/deploy fail D-12 broke checkout`", command=cmd)
        return DeployFail(ref=_deploy_ref(args[0], command=cmd), reason=unescape_text(args[1].strip()) if len(args) > 1 else None)
    if head in ("freeze", "unfreeze", "freezes"):
        return _parse_freeze(head, rest, cmd)
    if head == "rollback":
        args, opts = _split(rest, command=cmd, options={"to"})
        if len(args) != 1:
            raise UsageError("`/deploy rollback` needs exactly one service, like `/deploy rollback checkout`", command=cmd)
        return DeployRollback(service=args[0], to=opts.get("to"))
    hotfix = head == "hotfix"
    body = rest if hotfix else text
    args, opts = _split(body, command=cmd, options={"env", "commit", "committed", "url", "fixes"}, stop_after=2)
    if len(args) < 2:
        example = "/deploy hotfix checkout 2026.11.24-2" if hotfix else "/deploy checkout 2026.11.24-1"
        raise UsageError(
            f"a deploy needs a service and a version, like `{example}`; got `{text.strip()}`",
            command=cmd,
        )
    if "committed" in opts and "commit" not in opts:
        raise UsageError("`committed=` goes with `commit=<sha>`", command=cmd)
    note = " ".join(args[2:]) or None
    return DeployRecord(
        service=args[0],
        version=args[1],
        environment=opts.get("env", "production"),
        commit=opts.get("commit"),
        committed=opts.get("committed"),
        url=opts.get("url"),
        note=note,
        fixes=_incident_ref(opts["fixes"], command=cmd) if "fixes" in opts else None,
        hotfix=hotfix,
    )


# --- /incident ----------------------------------------------------------------------------

@dataclass(frozen=True)
class IncidentModal:
    pass


LATEST = "latest"  # `cause=latest`


@dataclass(frozen=True)
class IncidentDeclare:
    severity: str
    service: str
    title: str
    started: str | None = None
    cause: str | None = None


@dataclass(frozen=True)
class IncidentList:
    pass


@dataclass(frozen=True)
class IncidentAction:
    """show / ack / mitigate / resolve / cancel / update / cause on one incident."""

    verb: str
    ref: str
    text: str | None = None
    deploy: str | None = None


def parse_incident_command(text: str):
    cmd = "incident"
    words = text.split()
    if not words:
        return IncidentModal()
    head = words[0].lower()
    rest = text.strip()[len(words[0]):].strip()
    if head in ("help", "-h", "--help"):
        return Help(cmd)
    if head in ("sev1", "sev2", "sev3", "sev4"):  # `/incident sev2 checkout ...`: declare, said shorter
        head, rest = "declare", text.strip()
    if head == "declare":
        args, opts = _split(rest, command=cmd, options={"started", "cause"}, stop_after=2)
        if len(args) < 3:
            raise UsageError(
                "`/incident declare` needs a severity, a service and a title, like `/incident declare sev2 checkout Checkout 5xx`",
                command=cmd,
            )
        severity = args[0].lower()
        if is_digits(severity):
            severity = "sev" + severity
        if severity not in ("sev1", "sev2", "sev3", "sev4"):
            raise UsageError(f"`{args[0]}` is not a severity; use sev1, sev2, sev3 or sev4", command=cmd)
        cause = opts.get("cause")
        if cause is not None:  # `cause=latest`: the service's latest production deploy, the one just made
            cause = LATEST if cause.lower() in ("latest", "last") else _deploy_ref(cause, command=cmd)
        return IncidentDeclare(severity=severity, service=args[1], title=" ".join(args[2:]), started=opts.get("started"), cause=cause)
    if head == "list":
        if rest:
            raise UsageError("`/incident list` takes no arguments", command=cmd)
        return IncidentList()
    if head in LIFECYCLE_VERBS:
        return parse_lifecycle(head, rest)
    if head in ("show", "ack", "acknowledge", "resolve", "update", "cause", "mitigate", "cancel"):
        verb = {"acknowledge": "ack"}.get(head, head)
        args = rest.split(maxsplit=1)
        if not args:
            raise UsageError(f"`/incident {head}` needs an incident, like `/incident {head} INC-7`", command=cmd)
        ref = _incident_ref(args[0], command=cmd)
        extra = unescape_text(args[1].strip()) if len(args) > 1 else None
        if verb == "show" and extra:
            raise UsageError("`/incident show` takes one incident", command=cmd)
        if verb == "ack" and extra:
            raise UsageError("`/incident ack` takes one incident", command=cmd)
        if verb == "update" and not extra:
            raise UsageError("`/incident update` needs some text, like `/incident update INC-7 rolled back, watching`", command=cmd)
        if verb == "cancel" and not extra:
            raise UsageError("`/incident cancel` needs a reason, like `/incident cancel INC-7 false alarm, the check was flaky`",
                             command=cmd)
        if verb == "cause":
            if not extra or len(extra.split()) != 1:
                raise UsageError("`/incident cause` needs one deploy, like `/incident cause INC-7 D-12`", command=cmd)
            return IncidentAction(verb=verb, ref=ref, deploy=_deploy_ref(extra, command=cmd))
        return IncidentAction(verb=verb, ref=ref, text=extra)
    raise UsageError(
        f"unknown subcommand `{words[0]}` (try declare, list, show, ack, update, cause, mitigate, resolve, cancel,"
        " severity, lead, note, followup, followups, channel or postmortem)", command=cmd
    )


@dataclass(frozen=True)
class IncidentLifecycle:
    """severity / lead / note / followup / followups / channel / postmortem."""

    verb: str
    ref: str | None = None
    text: str | None = None
    user: str | None = None  # lead: the new lead (None: the caller); followup: its owner
    severity: str | None = None
    mine: bool = False


LIFECYCLE_VERBS = ("severity", "sev", "lead", "note", "followup", "follow-up", "followups", "follow-ups", "channel", "postmortem")


def parse_lifecycle(head: str, rest: str) -> IncidentLifecycle:
    cmd = "incident"
    verb = {"sev": "severity", "follow-up": "followup", "follow-ups": "followups"}.get(head, head)
    if verb == "followups":
        if rest.strip().lower() not in ("", "mine"):
            raise UsageError("`/incident followups` takes nothing or `mine`", command=cmd)
        return IncidentLifecycle(verb=verb, mine=rest.strip().lower() == "mine")
    args = rest.split(maxsplit=1)
    if not args:
        raise UsageError(f"`/incident {verb}` needs an incident, like `/incident {verb} INC-7`", command=cmd)
    ref = _incident_ref(args[0], command=cmd)
    extra = args[1].strip() if len(args) > 1 else ""
    if verb in ("channel", "postmortem"):
        if extra:
            raise UsageError(f"`/incident {verb}` takes one incident", command=cmd)
        return IncidentLifecycle(verb=verb, ref=ref)
    if verb == "severity":
        severity = extra.lower()
        if is_digits(severity):
            severity = "sev" + severity
        if severity not in ("sev1", "sev2", "sev3", "sev4"):
            raise UsageError(f"`{extra or '(nothing)'}` is not a severity; use sev1, sev2, sev3 or sev4,"
                             " like `/incident severity INC-7 sev1`", command=cmd)
        return IncidentLifecycle(verb=verb, ref=ref, severity=severity)
    if verb == "lead":
        if not extra:
            return IncidentLifecycle(verb=verb, ref=ref)
        m = _USER_RE.match(extra)
        if not m:
            raise UsageError(f"`{extra}` is not a person; mention one, like `/incident lead INC-7 @ana`", command=cmd)
        return IncidentLifecycle(verb=verb, ref=ref, user=m.group(1))
    owner = None
    if verb == "followup":
        words = extra.split(maxsplit=1)
        if words and (m := _USER_RE.match(words[0])):
            owner, extra = m.group(1), (words[1] if len(words) > 1 else "")
    if not extra:
        example = "add a retry budget" if verb == "followup" else "error rate back to normal"
        raise UsageError(f"`/incident {verb}` needs some text, like `/incident {verb} INC-7 {example}`", command=cmd)
    return IncidentLifecycle(verb=verb, ref=ref, text=unescape_text(extra), user=owner)


# --- /dora --------------------------------------------------------------------------------

EXPLAIN_KEYS = {
    "df": "deployment_frequency", "lt": "lead_time", "cfr": "change_failure_rate", "rework": "deployment_rework_rate",
    "ttr": "time_to_restore",
}


@dataclass(frozen=True)
class DoraCard:
    service: str | None = None
    days: int = 30
    team: str | None = None


@dataclass(frozen=True)
class DoraExplain:
    key: str
    service: str | None = None
    days: int = 30
    team: str | None = None


@dataclass(frozen=True)
class DigestAdd:
    channel: ChannelRef
    cadence: str = "weekly"
    day: str = "mon"
    time: str = "09:00"
    tz: str | None = None
    service: str | None = None
    team: str | None = None


@dataclass(frozen=True)
class DigestList:
    pass


@dataclass(frozen=True)
class DigestRemove:
    id: str


@dataclass(frozen=True)
class DigestSend:
    id: str


_WEEKDAYS = {
    **{d: d for d in WEEKDAYS},
    **{name: name[:3] for name in ("monday", "tuesday", "wednesday", "thursday", "friday", "saturday", "sunday")},
}


def _parse_digest(text: str):
    cmd = "dora"
    words = text.split()
    if not words:
        raise UsageError("`/dora digest` needs add, list, remove or send", command=cmd)
    verb, rest = words[0].lower(), text.strip()[len(words[0]):].strip()
    if verb in ("help", "-h", "--help"):
        return Help(cmd)
    if verb == "list":
        if rest:
            raise UsageError("`/dora digest list` takes no arguments", command=cmd)
        return DigestList()
    if verb in ("remove", "send"):
        args = rest.split()
        # ASCII only; too big is "no such digest"
        if len(args) != 1 or not (args[0].lstrip("#").isascii() and args[0].lstrip("#").isdigit()):
            raise UsageError(f"`/dora digest {verb}` needs the digest's number from `/dora digest list`", command=cmd)
        return (DigestRemove if verb == "remove" else DigestSend)(id=args[0].lstrip("#"))
    if verb == "add":
        args, opts = _split(rest, command=cmd, options={"day", "time", "tz", "service", "team"})
        if "service" in opts and "team" in opts:
            raise UsageError("a digest is for a service or a team, not both", command=cmd)
        if not args:
            raise UsageError("`/dora digest add` needs a channel, like `/dora digest add #eng-leads`", command=cmd)
        channel = parse_channel(args[0], command=cmd)
        cadence = "weekly"
        for word in args[1:]:  # `weekly`/`daily`, and said without their names: `fri`, `16:30`, `Europe/Berlin`
            low = word.lower()
            if low in ("weekly", "daily"):
                cadence = low
                continue
            if low in _WEEKDAYS:
                name = "day"
            elif re.fullmatch(r"\d{1,2}:\d{2}", word):
                name = "time"
            elif "/" in word or low == "utc":
                name = "tz"
            else:
                raise UsageError(
                    f"`{word}` is not weekly or daily, a day, a time or a time zone"
                    " (like `/dora digest add #eng weekly fri 16:30 Europe/Berlin`)",
                    command=cmd,
                )
            if name in opts:
                raise UsageError(f"`{word}` and `{name}={opts[name]}`: the {name} is given twice", command=cmd)
            opts[name] = _WEEKDAYS[low] if name == "day" else word
        if cadence == "daily" and "day" in opts:
            raise UsageError("`day=` only goes with weekly digests", command=cmd)
        return DigestAdd(channel=channel, cadence=cadence, day=opts.get("day", "mon"), time=opts.get("time", "09:00"),
                         tz=opts.get("tz"), service=opts.get("service"), team=opts.get("team"))
    raise UsageError(f"unknown digest subcommand `{words[0]}` (try add, list, remove, send or help)", command=cmd)


@dataclass(frozen=True)
class WatchAdd:
    condition: str  # checked by bot.core.watches.parse_condition
    channel: ChannelRef
    service: str | None = None
    team: str | None = None
    days: int = 30


@dataclass(frozen=True)
class WatchList:
    pass


@dataclass(frozen=True)
class WatchRemove:
    id: str


def _parse_watch(text: str):
    """``/dora watch add cfr>15% service=checkout days=30 #channel``, ``list``, ``remove <id>``."""
    from bot.core.watches import parse_condition

    cmd = "dora"
    words = text.split()
    if not words:
        raise UsageError("`/dora watch` needs add, list or remove", command=cmd)
    verb, rest = words[0].lower(), text.strip()[len(words[0]):].strip()
    if verb == "list":
        if rest:
            raise UsageError("`/dora watch list` takes no arguments", command=cmd)
        return WatchList()
    if verb == "remove":
        args = rest.split()
        # ASCII only; too big is "no such watch"
        if len(args) != 1 or not (args[0].lstrip("#").isascii() and args[0].lstrip("#").isdigit()):
            raise UsageError("`/dora watch remove` needs the watch's number from `/dora watch list`", command=cmd)
        return WatchRemove(id=args[0].lstrip("#"))
    if verb != "add":
        raise UsageError(f"unknown watch subcommand `{words[0]}`", command=cmd)
    # Slack sends ``<`` as ``&lt;``; a bare ``<`` that opens no channel, mention or link is the operator.
    rest = re.sub(r"<(?![#@!]|https?://)", "&lt;", rest)
    args, opts = _split(rest, command=cmd, options={"service", "team", "days"})
    channels = [a for a in args if a.startswith(("<#", "#"))]
    words = [a for a in args if not a.startswith(("<#", "#"))]
    if not words:
        raise UsageError("`/dora watch add` needs a condition, like `/dora watch add cfr>15% #eng`", command=cmd)
    if not channels:
        raise UsageError("`/dora watch add` needs a channel to post in, like `/dora watch add cfr>15% #eng`", command=cmd)
    if len(channels) > 1:
        raise UsageError(f"`/dora watch add` takes one channel, got `{' '.join(channels)}`", command=cmd)
    if "service" in opts and "team" in opts:
        raise UsageError("a watch is for a service or a team, not both", command=cmd)
    try:
        condition = parse_condition("".join(words))  # `cfr > 15%` reads as `cfr>15%`
    except DoraError as exc:
        raise UsageError(exc.message, command=cmd) from None
    days = _int(opts["days"], name="days", lo=1, hi=3660, command=cmd) if "days" in opts else 30
    return WatchAdd(condition=condition.text, channel=parse_channel(channels[0], command=cmd), service=opts.get("service"),
                    team=opts.get("team"), days=days)


@dataclass(frozen=True)
class DoraAlerts:
    channel: ChannelRef | None = None  # None: show the current setting


def parse_dora_command(text: str):
    cmd = "dora"
    words = text.split()
    head = words[0].lower() if words else ""
    rest = text.strip()[len(words[0]):].strip() if words else ""
    if head in ("help", "-h", "--help"):
        return Help(cmd)
    if head == "alerts":
        args = rest.split()
        if len(args) > 1:
            raise UsageError("`/dora alerts` takes one channel", command=cmd)
        return DoraAlerts(channel=parse_channel(args[0], command=cmd) if args else None)
    if head == "team":
        return _parse_team(rest)
    if head == "service":
        return _parse_service(rest)
    if head == "explain":
        args, opts = _split(rest, command=cmd, options={"days", "team"})
        if not args or args[0].lower() not in EXPLAIN_KEYS:
            raise UsageError("`/dora explain` needs one of df, lt, cfr, rework, ttr", command=cmd)
        if len(args) > 2:
            raise UsageError(f"`/dora explain` takes one service, got `{' '.join(args[1:])}`", command=cmd)
        days = _int(opts["days"], name="days", lo=1, hi=3660, command=cmd) if "days" in opts else 30
        if len(args) > 1 and "team" in opts:
            raise UsageError("`/dora explain` takes a service or a team, not both", command=cmd)
        return DoraExplain(key=args[0].lower(), service=args[1] if len(args) > 1 else None, days=days, team=opts.get("team"))
    if head == "digest":
        return _parse_digest(rest)
    if head == "watch":
        return _parse_watch(rest)
    args, opts = _split(text, command=cmd, options={"days", "team"})
    if len(args) > 1:  # `/dora checkout web`: the first word is taken as a service, the rest is not understood
        raise UsageError(
            f"I read `{args[0]}` as a service; `{' '.join(args[1:])}` is unexpected (one service at a time, like `/dora {args[0]} days=7`)",
            command=cmd,
        )
    if args and "team" in opts:
        raise UsageError("`/dora` takes a service or a team, not both", command=cmd)
    days = _int(opts["days"], name="days", lo=1, hi=3660, command=cmd) if "days" in opts else 30
    return DoraCard(service=args[0] if args else None, days=days, team=opts.get("team"))


# --- /dora team, /dora service ----------------------------------------------------------------

@dataclass(frozen=True)
class TeamSet:
    team: str
    services: tuple[str, ...]


@dataclass(frozen=True)
class TeamList:
    pass


@dataclass(frozen=True)
class TeamRemove:
    team: str


@dataclass(frozen=True)
class ServiceRename:
    old: str
    new: str


@dataclass(frozen=True)
class ServiceMerge:
    source: str
    into: str


def _parse_team(text: str):
    cmd = "dora"
    words = text.split()
    verb = words[0].lower() if words else ""
    if verb == "list":
        if len(words) > 1:
            raise UsageError("`/dora team list` takes no arguments", command=cmd)
        return TeamList()
    if verb == "remove":
        if len(words) != 2:
            raise UsageError("`/dora team remove` needs one team, like `/dora team remove payments`", command=cmd)
        return TeamRemove(team=words[1])
    if verb == "set":
        # `/dora team set payments checkout,billing` (spaces after the commas are fine too)
        if len(words) < 3:
            raise UsageError("`/dora team set` needs a team and its services, like `/dora team set payments checkout,billing`", command=cmd)
        services = tuple(s for s in (p.strip() for p in " ".join(words[2:]).split(",")) if s)
        if not services or any(" " in s for s in services):
            raise UsageError("separate the services with commas, like `/dora team set payments checkout,billing`", command=cmd)
        return TeamSet(team=words[1], services=services)
    raise UsageError("`/dora team` needs set, list or remove", command=cmd)


def _parse_service(text: str):
    cmd = "dora"
    words = text.split()
    verb = words[0].lower() if words else ""
    if verb in ("rename", "merge"):
        if len(words) != 3:
            example = "rename chekout checkout" if verb == "rename" else "merge chekout checkout"
            raise UsageError(f"`/dora service {verb}` needs two services, like `/dora service {example}`", command=cmd)
        return ServiceRename(old=words[1], new=words[2]) if verb == "rename" else ServiceMerge(source=words[1], into=words[2])
    raise UsageError("`/dora service` needs rename or merge", command=cmd)
