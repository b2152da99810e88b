"""The Slack Web API client: base URL from settings, retries on errors Slack asks us to retry."""

from __future__ import annotations

from slack_sdk import WebClient
from slack_sdk.errors import SlackApiError
from slack_sdk.http_retry.builtin_handlers import ConnectionErrorRetryHandler, RateLimitErrorRetryHandler, ServerErrorRetryHandler

from bot.config import Settings


def retry_handlers(max_retries: int = 4) -> list:
    # 429: wait as long as Slack's Retry-After header says (https://docs.slack.dev/apis/web-api/rate-limits)
    return [
        ConnectionErrorRetryHandler(max_retry_count=max_retries),
        RateLimitErrorRetryHandler(max_retry_count=max_retries),
        ServerErrorRetryHandler(max_retry_count=max_retries),
    ]


class InstrumentedWebClient(WebClient):
    """Counts every Web API call by method and outcome for Prometheus."""

    telemetry = None

    def api_call(self, api_method: str, *args, **kwargs):
        try:
            response = super().api_call(api_method, *args, **kwargs)
        except SlackApiError as exc:
            self._count(api_method, exc.response.get("error") or f"http_{exc.response.status_code}")
            raise
        except Exception:
            self._count(api_method, "connection_error")
            raise
        self._count(api_method, "ok")
        return response

    def _count(self, method: str, outcome: str) -> None:
        if self.telemetry is not None:
            self.telemetry.slack_calls.labels(method, outcome).inc()


def make_web_client(settings: Settings, *, token: str | None = None, timeout: int = 10, telemetry=None, listener: bool = False,
                    outbox: bool = False) -> WebClient:
    """The Web API client. ``outbox=True``: no retries of its own (the outbox retries, and checks
    whether a post whose answer was lost went through before posting again). ``listener=True``
    (Bolt's client, for modals, App Home and channel lookups while a user waits): connection
    errors and 5xx are retried, but a 429 is not slept on in a listener thread."""
    if outbox:
        handlers = []
    elif listener:
        handlers = [ConnectionErrorRetryHandler(max_retry_count=2), ServerErrorRetryHandler(max_retry_count=2)]
    else:
        handlers = retry_handlers()
    client = InstrumentedWebClient(
        token=token or settings.slack_bot_token,
        base_url=settings.slack_api_url,
        timeout=timeout,
        retry_handlers=handlers,
    )
    client.telemetry = telemetry
    return client
