"""One chat request against an OpenAI-compatible server, with SGLang run_eval's retry policy.

SGLang's ``ChatCompletionSampler`` tries 6 times with a back-off of ``2**trial`` seconds and turns a
``BadRequestError`` into an empty response (scored wrong).  We do the same, and also record what happened:
``error`` names the last failure, ``attempts`` how many tries were made.  Misconfiguration that retrying cannot
fix (unknown model, authentication) is reported as ``fatal`` so the caller can stop early.
"""

from __future__ import annotations

import math
import time
from dataclasses import dataclass, field
from typing import Any

import httpx
import openai


def normalize_base_url(url: str) -> str:
    """``http://host:port`` or ``http://host:port/v1`` -> ``http://host:port/v1`` (the SDK's base URL)."""
    url = url.rstrip("/")
    if not url.startswith(("http://", "https://")):
        raise ValueError(f"base URL {url!r} must start with http:// or https://")
    return url if url.endswith("/v1") else url + "/v1"


def make_client(base_url: str, *, timeout: float = 3600.0, max_connections: int = 1024) -> openai.OpenAI:
    http = httpx.Client(timeout=httpx.Timeout(timeout),
                        limits=httpx.Limits(max_connections=max_connections,
                                            max_keepalive_connections=max_connections))
    return openai.OpenAI(base_url=normalize_base_url(base_url), api_key="EMPTY", max_retries=0, http_client=http)


@dataclass
class ChatResult:
    text: str = ""
    completion_tokens: int | None = None
    prompt_tokens: int | None = None
    finish_reason: str | None = None
    tokens: list[str] | None = None  # per-token strings when logprobs were returned
    # the chosen token's logprob per position (None at a position the server gave none for); None when no
    # position had one
    token_logprobs: list[float | None] | None = None
    # per position, the alternatives the server listed (``top_logprobs``): token -> logprob, the chosen token
    # usually among them; ``{}`` at a position without any; None when no position had any (not requested, or
    # not returned)
    top_logprobs: list[dict[str, float]] | None = None
    error: str | None = None
    fatal: bool = False
    attempts: int = 0
    latency_s: float = 0.0
    extra: dict[str, Any] = field(default_factory=dict)


_FATAL = (openai.NotFoundError, openai.AuthenticationError, openai.PermissionDeniedError)
_BAD_REQUEST = (openai.BadRequestError, openai.UnprocessableEntityError)


def chat_once(
    client: openai.OpenAI,
    model: str,
    messages: list[dict[str, Any]],
    *,
    max_tokens: int,
    temperature: float = 0.0,
    top_p: float = 1.0,
    extra_body: dict[str, Any] | None = None,
    logprobs: bool = False,
    top_logprobs: int | None = None,
    tries: int = 6,
    backoff_s: float = 1.0,
    sleep=time.sleep,
) -> ChatResult:
    """Send one chat completion; retry transient failures ``tries`` times with ``backoff_s * 2**trial``.

    ``logprobs`` asks for the per-token logprobs (``tokens``, ``token_logprobs``); ``top_logprobs=N`` with it
    also for the N most likely tokens at each position (``top_logprobs``); without ``logprobs`` it is not sent."""
    res = ChatResult()
    t0 = time.perf_counter()
    kwargs: dict[str, Any] = dict(model=model, messages=messages, temperature=temperature, top_p=top_p,
                                  max_tokens=max_tokens)
    if extra_body:
        kwargs["extra_body"] = extra_body
    if logprobs:
        kwargs["logprobs"] = True
        if top_logprobs is not None:
            kwargs["top_logprobs"] = top_logprobs
    for trial in range(tries):
        res.attempts = trial + 1
        try:
            resp = client.chat.completions.create(**kwargs)
        except _BAD_REQUEST as exc:
            res.error = f"{type(exc).__name__}: {_short(exc)}"
            break
        except _FATAL as exc:
            res.error = f"{type(exc).__name__}: {_short(exc)}"
            res.fatal = True
            break
        except Exception as exc:  # connection errors, timeouts, 5xx, 429: transient
            res.error = f"{type(exc).__name__}: {_short(exc)}"
            if trial + 1 < tries:
                sleep(backoff_s * 2**trial)
            continue
        choice = resp.choices[0] if resp.choices else None
        res.text = (choice.message.content if choice and choice.message else None) or ""
        res.finish_reason = choice.finish_reason if choice else None
        if resp.usage is not None:
            res.completion_tokens = resp.usage.completion_tokens
            res.prompt_tokens = resp.usage.prompt_tokens
        lp = getattr(choice, "logprobs", None) if choice else None
        content = getattr(lp, "content", None) if lp is not None else None
        if content:
            res.tokens, res.token_logprobs, res.top_logprobs = parse_logprobs_content(content)
        res.error = None
        break
    res.latency_s = time.perf_counter() - t0
    return res


def _field(obj: Any, name: str) -> Any:
    """``obj.name`` or ``obj[name]`` (SDK objects, or plain dicts), None when absent."""
    if isinstance(obj, dict):
        return obj.get(name)
    return getattr(obj, name, None)


def _logprob(v: Any) -> float | None:
    """A finite float, else None (a server may omit a logprob, or send -inf for a token it rules out)."""
    if isinstance(v, bool) or not isinstance(v, (int, float)) or not math.isfinite(v):
        return None
    return float(v)


def parse_logprobs_content(
    content: list[Any],
) -> tuple[list[str], list[float | None] | None, list[dict[str, float]] | None]:
    """``choice.logprobs.content`` -> (tokens, chosen token's logprob per position, alternatives per position).

    The last two are None when no position carries any; missing or non-finite values are skipped (a position
    without a logprob gets None, without alternatives ``{}``).  When one token string is listed twice (two token
    ids that decode alike) the higher logprob is kept."""
    tokens: list[str] = []
    chosen: list[float | None] = []
    tops: list[dict[str, float]] = []
    for item in content:
        tok = _field(item, "token")
        tokens.append("" if tok is None else str(tok))
        chosen.append(_logprob(_field(item, "logprob")))
        alts: dict[str, float] = {}
        for alt in _field(item, "top_logprobs") or []:
            t, lp = _field(alt, "token"), _logprob(_field(alt, "logprob"))
            if t is None or lp is None:
                continue
            t = str(t)
            if t not in alts or lp > alts[t]:
                alts[t] = lp
        tops.append(alts)
    return (tokens, chosen if any(v is not None for v in chosen) else None,
            tops if any(tops) else None)


def _short(exc: Exception, limit: int = 300) -> str:
    s = str(exc).replace("\n", " ")
    return s if len(s) <= limit else s[: limit - 3] + "..."


def served_models(client: openai.OpenAI) -> list[str]:
    return [m.id for m in client.models.list().data]
