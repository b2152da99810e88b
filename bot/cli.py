"""The ``dora-bot`` command line: the entry point and its wiring."""

from __future__ import annotations

import json
import os
import signal
import sys
from pathlib import Path

import click

from bot.config import Settings
from bot.core.errors import ConfigError, DoraError
from bot.core.report_text import counted, render_report, render_service_table
from bot.runtime import Runtime, build_runtime, database_label


def _load_settings() -> Settings:
    from dotenv import find_dotenv, load_dotenv

    load_dotenv(find_dotenv(usecwd=True), override=False)
    return Settings.from_env()


def _fail(message: str, code: int = 1) -> None:
    click.echo(f"dora-bot: {message}", err=True)
    sys.exit(code)


class _Group(click.Group):
    """Turns the project's typed errors into one clear line and a non-zero exit."""

    def invoke(self, ctx):
        from sqlalchemy.exc import OperationalError

        try:
            return super().invoke(ctx)
        except ConfigError as exc:
            _fail(f"configuration error: {exc.message}", 2)
        except DoraError as exc:
            _fail(exc.message)
        except OperationalError as exc:
            settings = ctx.obj if isinstance(ctx.obj, Settings) else None
            where = database_label(settings.database_url) if settings else "the database"
            reason = str(exc.orig).strip().splitlines()[0] if exc.orig else exc.__class__.__name__
            _fail(f"cannot use the database at {where} (DATABASE_URL): {reason}", 3)


@click.group(cls=_Group)
@click.version_option(package_name="dora-bot")
@click.pass_context
def main(ctx: click.Context) -> None:
    """dora-bot: deploys, incidents and the four key DORA metrics, from Slack and CI."""
    ctx.obj = _load_settings()


def _runtime(ctx: click.Context, *, migrate: bool) -> Runtime:
    settings: Settings = ctx.obj
    rt = build_runtime(settings)
    rt.prepare(migrate=migrate)
    ctx.call_on_close(rt.engine.dispose)
    return rt


def _require_existing_sqlite(settings: Settings) -> None:
    from sqlalchemy.engine import make_url

    url = make_url(settings.database_url)
    if url.get_backend_name() == "sqlite" and url.database not in (None, "", ":memory:"):
        if not Path(url.database).exists():
            _fail(
                f"no database at {url.database}. Load data first with `dora-bot demo` or "
                "`dora-bot import FILE`, or set DATABASE_URL."
            )


# --- metrics ------------------------------------------------------------------------------

@main.command()
@click.option("--service", "-s", help="One service; all services when omitted.")
@click.option("--team", "-t", help="One team: the pooled events of its services.")
@click.option("--days", "-d", type=click.IntRange(1, 3660), default=30, show_default=True, help="Window length in days.")
@click.option("--end", help="End of the window (exclusive): ISO-8601 or how long ago (7d, 12h); default now.")
@click.option("--json", "as_json", is_flag=True, help="Print the metrics JSON instead of a table.")
@click.pass_context
def metrics(ctx: click.Context, service: str | None, team: str | None, days: int, end: str | None, as_json: bool) -> None:
    """DORA's five keys (and time to restore) for a service, a team or all services."""
    from bot.core.timeutil import parse_time
    from bot.runtime import utc_now

    if service and team:
        raise click.UsageError("give --service or --team, not both")
    from bot.services.metrics import build_metrics
    from bot.store.db import session_scope

    # ISO-8601, or how long ago (`7d`: the window ends a week ago); a bad --end is reported first
    end_at = parse_time(end, now=utc_now(), tz=ctx.obj.tz) if end else None
    _require_existing_sqlite(ctx.obj)
    rt = _runtime(ctx, migrate=False)
    now = rt.now()
    if end_at is not None and end_at > now:  # a window past now would count open incidents for decades
        _fail(f"--end {end} is in the future (now is {now:%Y-%m-%d %H:%M} UTC); leave it out for a window ending now", 2)
    end_at = end_at or now
    with session_scope(rt.engine, write=False) as session:
        if service:
            from bot.core.errors import NotFound
            from bot.services.lookup import find_service

            try:
                find_service(session, service)
            except NotFound as exc:  # a typo: say which services there are, rather than a table of n/a
                _fail(f"--service: {exc.message}", 2)
        report = build_metrics(
            session,
            service=service,
            team=team,
            days=days,
            end=end_at,
            timezone_name=rt.settings.timezone_name,
            production_environments=rt.settings.production_environments,
        )
        if team:
            from bot.core.errors import NotFound
            from bot.services.teams import find_team

            try:
                find_team(session, team)
            except NotFound as exc:
                click.echo(f"note: {exc.message}", err=True)
    click.echo(json.dumps(report, indent=2) if as_json else render_report(report))


# --- import -------------------------------------------------------------------------------

@main.command("import")
@click.argument("file", type=click.Path(dir_okay=False, allow_dash=True))
@click.option("--skip-invalid", is_flag=True, help="Load the good lines and report the bad ones (default: all or nothing).")
@click.option("--quiet", "-q", is_flag=True, help="No progress bar.")
@click.pass_context
def import_(ctx: click.Context, file: str, skip_invalid: bool, quiet: bool) -> None:
    """Backfill deploys and incidents from a JSON Lines FILE ('-' for stdin)."""
    from bot.services.importer import import_jsonl

    if file != "-" and not Path(file).is_file():
        _fail(f"no such file: {file}")
    rt = _runtime(ctx, migrate=True)
    stream = sys.stdin.buffer if file == "-" else open(file, "rb")
    size = None if file == "-" else os.path.getsize(file)
    show_bar = not quiet and size and sys.stderr.isatty()
    try:
        if show_bar:
            with click.progressbar(length=size, label="importing", file=sys.stderr, show_eta=True) as bar:
                report = import_jsonl(
                    rt.engine, stream, production_environments=rt.settings.production_environments,
                    now=rt.now(), skip_invalid=skip_invalid, progress=bar.update,
                )
        else:
            report = import_jsonl(
                rt.engine, stream, production_environments=rt.settings.production_environments,
                now=rt.now(), skip_invalid=skip_invalid,
            )
    finally:
        if stream is not sys.stdin.buffer:
            stream.close()
    for line_no, message in report.errors:
        click.echo(f"{file}:{line_no}: {message}", err=True)
    if report.invalid > len(report.errors):
        click.echo(f"... and {report.invalid - len(report.errors)} more bad lines", err=True)
    summary = (
        f"{counted(report.deploys_added, 'deploy')} and {counted(report.incidents_added, 'incident')} added, "
        f"{report.already_stored:,} already stored, {report.invalid:,} invalid, from {counted(report.lines, 'line')}"
    )
    if not report.committed:
        _fail(f"import rolled back, nothing stored: {counted(report.invalid, 'bad line')}. Fix them or use --skip-invalid.")
    click.echo(summary)
    if report.created_services:
        shown = ", ".join(report.created_services[:20]) + (
            f" and {len(report.created_services) - 20} more" if len(report.created_services) > 20 else ""
        )
        click.echo(f"new services created: {shown}")
    if report.teams:
        click.echo(f"teams set for {counted(len(report.teams), 'service')}: "
                   + ", ".join(f"{s} -> {t}" for s, t in list(report.teams.items())[:20]))
    if report.invalid:
        sys.exit(3)


# --- demo ---------------------------------------------------------------------------------

@main.command()
@click.option("--days", type=click.IntRange(7, 3660), default=30, show_default=True, help="Window of the printed report.")
@click.option("--chart", "chart_path", type=click.Path(dir_okay=False, writable=True),
              help="Also save the digest's trend chart (PNG) to this file.")
@click.pass_context
def demo(ctx: click.Context, days: int, chart_path: str | None) -> None:
    """Fill the database with a realistic sample history and print the five keys."""
    from datetime import timedelta

    from bot.services.demo import demo_lines, service_names
    from bot.services.digests import digest_data, period_until
    from bot.services.importer import import_jsonl
    from bot.services.metrics import build_metrics
    from bot.slack import blocks as bk
    from bot.slack.digest import digest_message, trend_chart_png
    from bot.store.db import session_scope
    from bot.store.models import DigestSubscription

    if chart_path and not Path(chart_path).resolve().parent.is_dir():
        _fail(f"--chart: no folder {Path(chart_path).resolve().parent} to save the chart in", 2)
    rt = _runtime(ctx, migrate=True)
    now = rt.now()
    report = import_jsonl(
        rt.engine, demo_lines(now), production_environments=rt.settings.production_environments, now=now
    )
    where = database_label(rt.settings.database_url)
    if report.deploys_added or report.incidents_added:
        click.echo(f"Wrote {counted(report.deploys_added, 'deploy')} and {counted(report.incidents_added, 'incident')} to {where}.\n")
    else:
        click.echo(f"Demo history already in {where}; nothing added.\n")
    settings = rt.settings
    with session_scope(rt.engine, write=False) as session:
        def scope(service, *, end=now):
            return build_metrics(
                session, service=service, days=days, end=end, timezone_name=settings.timezone_name,
                production_environments=settings.production_environments,
            )

        click.echo("The /dora card:\n")
        click.echo(_as_text(bk.dora_card(scope(None), scope(None, end=now - timedelta(days=days)))))
        click.echo(f"\nBy service, last {days} days:\n")
        click.echo(render_service_table([scope(name) for name in service_names()]))
        sub = DigestSubscription(id=0, channel="C0DIGEST", timezone=settings.timezone_name, created_at=now)
        data = digest_data(session, sub, period_until(sub, now), production_environments=settings.production_environments)
    click.echo("\nThe weekly digest, as `/dora digest send` posts it now (a scheduled one covers Monday to Sunday):\n")
    click.echo(_as_text(digest_message(data, now=now)))
    if chart_path:  # written only when asked: never a stray file in the folder it runs from
        chart = Path(chart_path)
        chart.write_bytes(trend_chart_png(data))
        click.echo(f"\nThe digest's trend chart: {chart.resolve()}")
    else:
        click.echo("\nThe digest's trend chart: add --chart FILE.png to save it.")
    click.echo("\nTry: dora-bot metrics --service checkout --days 90   or   dora-bot metrics --json")


# --- serve ------------------------------------------------------------------------------

@main.command()
@click.option("--socket-mode", is_flag=True, help="Connect to Slack over Socket Mode (SLACK_APP_TOKEN) instead of HTTP.")
@click.option("--migrate", is_flag=True, help="Apply database migrations before serving (instead of `dora-bot db upgrade`).")
@click.pass_context
def serve(ctx: click.Context, socket_mode: bool, migrate: bool) -> None:
    """Run the Slack app, the ingest API, webhooks, health and metrics, and the scheduler.

    HTTP on HOST:PORT; with --socket-mode Slack events arrive over a WebSocket instead, and HTTP
    still serves the ingest API, /healthz, /readyz and /metrics. SIGTERM stops accepting requests,
    finishes those in flight and the outbox batch in hand, and releases the scheduler lock.
    """
    settings: Settings = ctx.obj
    if not settings.slack_bot_token:
        raise ConfigError("SLACK_BOT_TOKEN", "is required to serve (a bot token, xoxb-...)")
    if socket_mode and not settings.slack_app_token:
        raise ConfigError("SLACK_APP_TOKEN", "is required for --socket-mode (an app-level token, xapp-...)")
    if not socket_mode and not settings.slack_signing_secret:
        raise ConfigError("SLACK_SIGNING_SECRET", "is required to serve over HTTP (Basic Information > Signing Secret)")
    import uvicorn

    from bot.logs import configure
    from bot.scheduler.setup import Leadership
    from bot.server import create_asgi_app
    from bot.slack.app import create_app
    from bot.slack.delivery import start_worker
    from bot.telemetry import GaugeRefresher, Telemetry

    configure(level=settings.log_level, fmt=settings.log_format, secrets=settings.secrets)
    rt = _runtime(ctx, migrate=migrate)
    rt.telemetry = Telemetry()
    bolt = create_app(rt, verify_requests=not socket_mode)
    identity = rt.slack_identity.start()  # auth.test in the background: commands are taken meanwhile
    worker = start_worker(rt)  # the only sender of cards, threads, reminders, digests
    gauges = GaugeRefresher(rt, rt.telemetry).start()
    leadership = Leadership(rt).start() if settings.run_scheduler else None
    # Runs after uvicorn has drained in-flight requests: last, release the scheduler lock.
    ctx.call_on_close(gauges.stop)
    ctx.call_on_close(worker.stop)
    ctx.call_on_close(identity.stop)
    if leadership is not None:
        ctx.call_on_close(leadership.stop)
    server_options = dict(host=settings.host, port=settings.port, log_config=None, timeout_graceful_shutdown=25)
    # uvicorn drains on SIGTERM, then restores this handler and re-raises the signal: exiting
    # through SystemExit lets the shutdown steps above run (outbox batch, scheduler lock).
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(0))
    if socket_mode:
        from slack_bolt.adapter.socket_mode import SocketModeHandler

        handler = SocketModeHandler(bolt, settings.slack_app_token)
        handler.connect()  # Slack over a WebSocket; HTTP still serves health and the ingest API
        click.echo("dora-bot: connected to Slack over Socket Mode")
        try:
            uvicorn.run(create_asgi_app(rt, None), **server_options)
        finally:
            handler.close()
        return
    uvicorn.run(create_asgi_app(rt, bolt), **server_options)


# --- shell ------------------------------------------------------------------------------

@main.command()
@click.option("--user", default="U0SHELL", show_default=True,
              help="The Slack user id you act as (admin-only commands check it against DORA_ADMINS).")
@click.option("--raw", is_flag=True, help="Also print the Block Kit JSON of every message, card and form the app sends.")
@click.pass_context
def shell(ctx: click.Context, user: str, raw: bool) -> None:
    """Drive the Slack app from a terminal, with no Slack (SQLite by default)."""
    import dataclasses

    from bot.shell import LocalSlack, TrackingExecutor, line_reader, run_shell
    from bot.slack.app import create_app

    user = user.strip().upper()
    if not user or not user.isalnum() or user[0] not in "UW":
        _fail(f"--user: `{user}` is not a Slack user id like U123ABC", 2)
    slack = LocalSlack().start()
    settings = dataclasses.replace(
        ctx.obj,
        slack_bot_token="xoxb-shell",
        slack_api_url=slack.url + "/api/",
        alert_channel=ctx.obj.alert_channel or "C0ALERTS",
    )
    ctx.obj = settings
    rt = _runtime(ctx, migrate=True)
    executor = TrackingExecutor()
    app = create_app(rt, verify_requests=False, listener_executor=executor)
    from bot.slack.delivery import make_sender

    sender = make_sender(rt, parallel=1)  # the shell sends the outbox itself, after each line
    interactive = sys.stdin.isatty()
    read_line, close_reader = line_reader(interactive, echo=click.echo)
    try:
        code = run_shell(app, slack, executor, out=sys.stdout, read_line=read_line, interactive=interactive, deliver=sender.deliver_due,
                         user=user, raw=raw)
    finally:
        close_reader()
        executor.shutdown(wait=True)
        slack.stop()
    sys.exit(code)


# --- jobs -------------------------------------------------------------------------------

@main.group()
def jobs() -> None:
    """The scheduler's jobs."""


@jobs.command("list")
@click.pass_context
def jobs_list(ctx: click.Context) -> None:
    """List the scheduled jobs and when they run next."""
    from bot.scheduler import jobs as registry

    rt = _runtime(ctx, migrate=False)
    next_runs = {}
    from sqlalchemy import inspect

    if inspect(rt.engine).has_table("apscheduler_jobs"):
        from apscheduler.jobstores.sqlalchemy import SQLAlchemyJobStore

        store = SQLAlchemyJobStore(engine=rt.engine, tablename="apscheduler_jobs")
        store.start(None, "default")
        next_runs = {job.id: job.next_run_time for job in store.get_all_jobs()}
    for spec in registry.JOBS:
        when = next_runs.get(spec.id)
        click.echo(f"{spec.id:<22} every {spec.seconds}s  next: {when.isoformat() if when else 'when `serve` starts'}  {spec.description}")


@jobs.command("run")
@click.argument("job_id")
@click.pass_context
def jobs_run(ctx: click.Context, job_id: str) -> None:
    """Run one job now, through the same code the scheduler runs."""
    from bot.scheduler import jobs as registry

    try:
        spec = registry.get(job_id)
    except KeyError:
        _fail(f"no job `{job_id}`; `dora-bot jobs list` shows them")
    rt = _runtime(ctx, migrate=False)
    registry.bind(rt)
    count = spec.func()
    click.echo(f"{spec.id}: {count} queued")
    if rt.settings.slack_bot_token:  # deliver this and anything else waiting in the outbox
        from bot.slack.client import make_web_client
        from bot.slack.delivery import make_sender

        sent = make_sender(rt, client=make_web_client(rt.settings, outbox=True), parallel=1).deliver_due()
        click.echo(f"{counted(sent, 'message')} delivered to Slack")
    elif count:
        click.echo("queued in the outbox; `dora-bot serve` delivers them (SLACK_BOT_TOKEN is not set here)")


def _as_text(message: tuple[str, list[dict]]) -> str:
    from bot.slack.render_text import render_message

    text, blocks = message
    return "\n".join(render_message({"text": text, "blocks": blocks}, buttons=[]))


# --- db -----------------------------------------------------------------------------------

@main.group()
def db() -> None:
    """Database schema."""


@db.command()
@click.pass_context
def upgrade(ctx: click.Context) -> None:
    """Apply schema migrations (Alembic) up to the latest."""
    from bot.store.db import schema_status
    from bot.store.db import upgrade as run_upgrade

    settings: Settings = ctx.obj
    rt = build_runtime(settings)
    try:
        before = schema_status(rt.engine)[1]
        run_upgrade(rt.engine)
        rt.prepare(migrate=False)
        after = schema_status(rt.engine)[1]
    finally:
        rt.engine.dispose()
    where = database_label(settings.database_url)
    if before == after:
        click.echo(f"{where} is up to date (revision {after}).")
    else:
        click.echo(f"Upgraded {where} from {before or 'empty'} to {after}.")


@db.command()
@click.pass_context
def status(ctx: click.Context) -> None:
    """Show whether the schema is current."""
    from bot.store.db import schema_status

    rt = build_runtime(ctx.obj)
    try:
        current, rev, head = schema_status(rt.engine)
    finally:
        rt.engine.dispose()
    click.echo(f"revision {rev or 'none'}, latest {head}: {'up to date' if current else 'run `dora-bot db upgrade`'}")
    sys.exit(0 if current else 1)


if __name__ == "__main__":  # pragma: no cover
    main()
