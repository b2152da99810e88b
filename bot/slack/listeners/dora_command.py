"""``/dora``: the five-keys card, explain, and the incident alert channel."""

from __future__ import annotations

from bot.core import grammar as g
from bot.core.errors import DoraError
from bot.core.report_text import counted, scope_label
from bot.core.timeutil import format_duration
from bot.runtime import Runtime
from bot.services import digests, explain
from bot.services.app_settings import get_alert_channel, set_alert_channel
from bot.services.metrics import build_metrics, make_window
from bot.services.teams import require_scope
from bot.slack import blocks as bk
from bot.slack.listeners.common import messenger, reply, runtime, transaction
from bot.store.db import session_scope


class NotAllowed(DoraError):
    pass


def dora_command(ack, command, respond, context) -> None:
    parsed = g.parse_dora_command(command.get("text") or "")  # a UsageError is the ack's answer
    ack()
    handle(context, parsed, command=command, respond=respond)


def reports(rt: Runtime, session, *, service: str | None = None, days: int, scope=None) -> tuple[dict, dict]:
    """The report for the window ending now and for the window before it."""
    now = rt.now()
    kw = dict(service=service, scope=scope, days=days, timezone_name=rt.settings.timezone_name,
              production_environments=rt.settings.production_environments)
    current = build_metrics(session, end=now, **kw)
    previous = build_metrics(session, end=make_window(end=now, days=days, timezone_name=rt.settings.timezone_name).start, **kw)
    return current, previous


def handle(context, parsed, *, command: dict, respond) -> None:
    rt = runtime(context)
    user = command.get("user_id")
    if isinstance(parsed, g.Help):
        reply(respond, *bk.help_message("/dora", g.DORA_USAGE))
    elif isinstance(parsed, g.DoraCard):
        with session_scope(rt.engine, write=False) as session:
            scope = require_scope(session, service=parsed.service, team=parsed.team)  # a typo gets the closest names
            current, previous = reports(rt, session, scope=scope, days=parsed.days)
        reply(respond, *bk.dora_card(current, previous), public=True)
    elif isinstance(parsed, g.DoraExplain):
        with session_scope(rt.engine, write=False) as session:
            reply(respond, *explain_message(rt, session, parsed))
    elif isinstance(parsed, (g.DigestAdd, g.DigestList, g.DigestRemove, g.DigestSend)):
        handle_digest(context, parsed, user=user, respond=respond)
    elif isinstance(parsed, (g.WatchAdd, g.WatchList, g.WatchRemove)):
        from bot.slack.listeners.watches import handle_watch

        handle_watch(context, parsed, user=user, respond=respond)
    elif isinstance(parsed, (g.TeamSet, g.TeamList, g.TeamRemove, g.ServiceRename, g.ServiceMerge)):
        from bot.slack.listeners import teams

        teams.handle(context, parsed, user=user, respond=respond)
    elif isinstance(parsed, g.DoraAlerts):
        if parsed.channel is None:
            with session_scope(rt.engine, write=False) as session:
                current = get_alert_channel(session, default=rt.settings.alert_channel)
            reply(respond, f"Incident alerts go to <#{current}>." if current
                  else "No alert channel yet: set one with `/dora alerts #channel`.")
            return
        require_admin(rt, user, "change where alerts go")
        channel_id = channel_id_of(context, parsed.channel)
        with transaction(context) as session:
            set_alert_channel(session, channel_id)
        reply(respond, f":rotating_light: <@{user}> set incident alerts to go to <#{channel_id}>.", public=True)


def require_admin(rt: Runtime, user: str | None, what: str) -> None:
    if rt.settings.admins and user not in rt.settings.admins:
        raise NotAllowed(f"Only the admins listed in DORA_ADMINS can {what}.")


def channel_id_of(context, channel: g.ChannelRef) -> str:
    channel_id = channel.id or messenger(context).channel_id_for_name(channel.name)
    if channel_id is None:
        raise DoraError(f"I can't find #{channel.name}. Pick the channel with # so Slack links it, or invite me to it.")
    return channel_id


def handle_digest(context, parsed, *, user: str | None, respond) -> None:
    rt = runtime(context)
    now = rt.now()
    if isinstance(parsed, g.DigestList):
        with session_scope(rt.engine, write=False) as session:
            subs = digests.list_subscriptions(session)
            lines = [digests.describe(s) for s in subs]
        reply(respond, "\n".join(lines) if lines else "No digests yet: add one with `/dora digest add #channel`.")
    elif isinstance(parsed, g.DigestAdd):
        require_admin(rt, user, "add digests")
        channel_id = channel_id_of(context, parsed.channel)
        with transaction(context) as session:
            sub = digests.add_subscription(
                session, channel=channel_id, cadence=parsed.cadence, weekday=digests.parse_weekday(parsed.day),
                time_of_day=parsed.time, timezone=parsed.tz or rt.settings.timezone_name, service=parsed.service,
                team=parsed.team, actor=user, now=now,
            )
            text = digests.describe(sub)
        reply(respond, f":calendar: Digest added: {text}", public=True)
    elif isinstance(parsed, g.DigestRemove):
        require_admin(rt, user, "remove digests")
        with transaction(context) as session:
            text = digests.describe(digests.remove_subscription(session, parsed.id))
        reply(respond, f"Digest removed: {text}", public=True)
    elif isinstance(parsed, g.DigestSend):
        with transaction(context) as session:
            sub = digests.get_subscription(session, parsed.id)
            period = digests.current_period(sub, now)
            digests.deliver(session, sub, period.key, now=now, manual=True)  # the outbox worker posts it
        span = "7 days" if sub.cadence == "weekly" else "24 hours"
        reply(respond, f"Sending digest #{parsed.id} to <#{sub.channel}>: the last {span} up to now, and the incidents open now.")


def explain_message(rt: Runtime, session, parsed: g.DoraExplain) -> tuple[str, list[dict]]:
    key = g.EXPLAIN_KEYS[parsed.key]
    of = require_scope(session, service=parsed.service, team=parsed.team)  # the one scope the number and every list read
    report = build_metrics(
        session, scope=of, days=parsed.days, end=rt.now(),
        timezone_name=rt.settings.timezone_name, production_environments=rt.settings.production_environments,
    )
    window = make_window(end=rt.now(), days=parsed.days, timezone_name=rt.settings.timezone_name)
    envs = rt.settings.production_environments
    m = report[key]
    scope = scope_label(report["scope"], code=True)
    lines: list[str] = []
    if parsed.key == "df":
        head = f"*Deployment frequency* for {scope}, last {parsed.days} days: {m['deploys']} successful deploys to {', '.join(envs)}"
        for d, name in explain.counted_deploys(session, window=window, environments=envs, service_id=of):
            lines.append(f"D-{d.id} `{name}` {bk.esc(bk.clip(d.version, 50))} · {bk.ts(d.deployed_at)}")
        note = "Counted: status success, production environment, deployed in the window. Rollbacks and redeploys count."
    elif parsed.key == "lt":
        head = f"*Lead time* for {scope}: {counted(m['samples'], 'commit')} first deployed to production in the window"
        if m["invalid_samples"]:
            head += f", {m['invalid_samples']} ignored (committed after their deploy)"
        for sample, name in explain.lead_samples(session, window=window, service_id=of):
            lines.append(f"`{sample.sha[:10]}` `{name}` {format_duration(sample.lead_seconds)} to D-{sample.deploy_id}")
        note = "One sample per commit, at the first production deploy that carried it; slowest first."
    elif parsed.key == "cfr":
        head = f"*Change failure rate* for {scope}: {m['failed']} of {counted(m['deploys'], 'deploy')} failed"
        for e in explain.failed_deploys(session, window=window, environments=envs, service_id=of):
            why = bk.esc(bk.clip(", ".join(e.reasons), 120))
            lines.append(f"D-{e.deploy.id} `{e.service}` {bk.esc(bk.clip(e.deploy.version, 40))}: {why}")
        note = "Failed: caused an incident (not a cancelled one), rolled back, or marked failed."
        if m["unlinked_incidents"]:
            note += f" {counted(m['unlinked_incidents'], 'incident')} in the window with no known cause: not counted."
        if m["not_change_incidents"]:
            note += f" {counted(m['not_change_incidents'], 'incident')} not caused by a deploy."
    elif parsed.key == "rework":
        head = f"*Deployment rework rate* for {scope}: {m['rework']} of {counted(m['deploys'], 'deploy')} were rework"
        for e in explain.rework_deploys(session, window=window, environments=envs, service_id=of):
            lines.append(f"D-{e.deploy.id} `{e.service}` {bk.esc(bk.clip(e.deploy.version, 40))}: {', '.join(e.reasons)}")
        note = ("Rework: an unplanned deploy because of a production problem: a rollback, a deploy that fixes an incident"
                " (fixes=INC-n), or a hotfix.")
    else:
        head = f"*Time to restore* for {scope}: {counted(m['incidents'], 'production incident')} recovered in the window"
        fdrt = report["failed_deployment_recovery_time"]
        if fdrt["incidents"]:  # the `ttr` of a watch: the ones with a causing deploy
            head += (f"; failed deployment recovery time {format_duration(fdrt['median_seconds'])}"
                     f" over the {fdrt['incidents']} with a known cause")
        for i, name in explain.recovered_incidents(session, window=window, environments=envs, service_id=of):
            cause = f" (from D-{i.caused_by_id}: {format_duration(i.recovery_seconds)})" if i.caused_by_id else ""
            lines.append(f"INC-{i.id} `{name}` {bk.esc(bk.clip(i.title, 60))}: {format_duration(i.restore_seconds)}{cause}")
        note = (
            "Measured from the start of impact to its mitigation (to the resolution when never mitigated);"
            f" cancelled incidents are left out; open incidents are not measured ({m['open_incidents']} open now); longest first."
        )
    return bk.explain_message(head, lines, note, limit=explain.LIMIT)
