"""The Slack Web API client: base URL from settings, retries on errors Slack asks us to retry."""

from __future__ import annotations

from slack_sdk import WebClient
from slack_sdk.http_retry.builtin_handlers import ConnectionErrorRetryHandler, RateLimitErrorRetryHandler, ServerErrorRetryHandler

from bot.config import Settings


def retry_handlers(max_retries: int = 4) -> list:
    # 429: wait as long as Slack's Retry-After header says (https://docs.slack.dev/apis/web-api/rate-limits)
    return [
        ConnectionErrorRetryHandler(max_retry_count=max_retries),
        RateLimitErrorRetryHandler(max_retry_count=max_retries),
        ServerErrorRetryHandler(max_retry_count=max_retries),
    ]


def make_web_client(settings: Settings, *, token: str | None = None, timeout: int = 10) -> WebClient:
    return WebClient(
        token=token or settings.slack_bot_token,
        base_url=settings.slack_api_url,
        timeout=timeout,
        retry_handlers=retry_handlers(),
    )
