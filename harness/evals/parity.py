"""Greedy parity: do two engines produce the same text for the same prompts at temperature 0?

Each prompt of a versioned prompt set (``scenarios/parity/prompts-v*.yaml``) goes through the chat API with
temperature 0, top_p 1 and a bounded ``max_tokens``.  For each prompt we record whether the two texts are equal,
where they first diverge and how much of them is shared:

``char_divergence``
    index of the first differing character (``None`` when equal; the shorter length when one text is a prefix
    of the other).
``token_divergence``
    index of the first differing token.  When both servers returned per-token logprobs (``logprobs: true``,
    which SGLang and vLLM support on the chat API) the tokens are the engines' own token strings
    (``token_method: "logprobs"``).  Otherwise the texts are split on whitespace (``str.split()``) and the index
    is that of the first differing word (``token_method: "whitespace"``); one word can be several tokens, so
    this is a lower bound on the token position.  ``None`` when the texts are equal, or when they differ only
    in ways the token lists do not show (e.g. whitespace under the whitespace split).
``common_prefix_ratio``
    length of the common character prefix divided by the longer text's length (1.0 for two empty texts).

The summary is ``match_rate = matches / prompts``.
"""

from __future__ import annotations

import datetime as dt
import hashlib
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from pydantic import BaseModel, ConfigDict, Field, model_validator

from harness import __version__
from harness.errors import HarnessError
from harness.evals import client as chat_client

PARITY_SCHEMA_VERSION = 1


class ParityPrompt(BaseModel):
    model_config = ConfigDict(extra="forbid")

    id: str
    category: str = "general"
    prompt: str | None = None
    messages: list[dict[str, Any]] | None = None
    max_tokens: int | None = Field(default=None, ge=1)

    @model_validator(mode="after")
    def _one_of(self) -> "ParityPrompt":
        if (self.prompt is None) == (self.messages is None):
            raise ValueError("give exactly one of 'prompt' (one user turn) or 'messages'")
        for m in self.messages or []:
            if m.get("role") not in ("system", "user", "assistant") or not isinstance(m.get("content"), str):
                raise ValueError("each message needs role system|user|assistant and a string content")
        return self

    def chat_messages(self) -> list[dict[str, Any]]:
        return self.messages if self.messages is not None else [{"role": "user", "content": self.prompt}]


class PromptSet(BaseModel):
    model_config = ConfigDict(extra="forbid")

    version: int
    name: str
    description: str = ""
    prompts: list[ParityPrompt]

    @model_validator(mode="after")
    def _unique(self) -> "PromptSet":
        ids = [p.id for p in self.prompts]
        dup = sorted({i for i in ids if ids.count(i) > 1})
        if dup:
            raise ValueError(f"duplicate prompt ids: {dup}")
        if not self.prompts:
            raise ValueError("no prompts")
        return self


def default_prompts_path() -> Path:
    """The versioned prompt set that `harness parity` and `harness compare` use."""
    from harness.paths import definitions_dir

    return definitions_dir() / "parity" / "prompts-v1.yaml"


def load_prompts(path: Path) -> tuple[PromptSet, str]:
    """Read and validate a prompt set; returns (set, sha256 of the file)."""
    from harness.definitions import load_yaml_as

    try:
        raw = path.read_bytes()
    except OSError as exc:
        raise HarnessError(f"cannot read parity prompts {path}: {exc}") from None
    return load_yaml_as(PromptSet, path), hashlib.sha256(raw).hexdigest()


@dataclass
class Generation:
    id: str
    text: str
    tokens: list[str] | None
    completion_tokens: int | None
    finish_reason: str | None
    error: str | None
    latency_s: float

    def as_dict(self) -> dict[str, Any]:
        return dict(self.__dict__)


def generate_all(
    base_url: str,
    served_model: str,
    prompts: PromptSet,
    *,
    max_tokens: int = 256,
    concurrency: int = 8,
    logprobs: bool = True,
    tries: int = 6,
    backoff_s: float = 1.0,
    extra_body: dict[str, Any] | None = None,
) -> list[Generation]:
    """Greedy generation for every prompt, in prompt order (independent of how the server was started)."""
    cl = chat_client.make_client(base_url, timeout=600.0, max_connections=max(concurrency, 8))

    def one(p: ParityPrompt) -> Generation:
        mt = p.max_tokens or max_tokens
        kw = dict(max_tokens=mt, temperature=0.0, top_p=1.0, tries=tries, backoff_s=backoff_s,
                  extra_body=extra_body)
        res = chat_client.chat_once(cl, served_model, p.chat_messages(), logprobs=logprobs, **kw)
        if logprobs and res.error and res.error.startswith(("BadRequestError", "UnprocessableEntityError")):
            res = chat_client.chat_once(cl, served_model, p.chat_messages(), logprobs=False, **kw)
        if res.fatal:
            raise HarnessError(f"parity against {base_url} (model {served_model!r}): {res.error}")
        return Generation(p.id, res.text, res.tokens, res.completion_tokens, res.finish_reason, res.error,
                          round(res.latency_s, 4))

    with ThreadPoolExecutor(max_workers=max(1, concurrency)) as pool:
        return list(pool.map(one, prompts.prompts))


def common_prefix_len(a: str, b: str) -> int:
    n = min(len(a), len(b))
    i = 0
    while i < n and a[i] == b[i]:
        i += 1
    return i


def _first_diff(a: list[str], b: list[str]) -> int | None:
    for i, (x, y) in enumerate(zip(a, b)):
        if x != y:
            return i
    return None if len(a) == len(b) else min(len(a), len(b))


def compare_pair(a: Generation, b: Generation) -> dict[str, Any]:
    exact = a.error is None and b.error is None and a.text == b.text
    cp = common_prefix_len(a.text, b.text)
    longest = max(len(a.text), len(b.text))
    if a.tokens is not None and b.tokens is not None:
        method, tok = "logprobs", _first_diff(a.tokens, b.tokens)
    else:
        method, tok = "whitespace", _first_diff(a.text.split(), b.text.split())
    if a.text == b.text:
        char_div, tok = None, None
    else:
        char_div = cp
    return {
        "id": a.id,
        "exact_match": exact,
        "char_divergence": char_div,
        "token_divergence": tok,
        "token_method": method,
        "common_prefix_chars": cp,
        "common_prefix_ratio": 1.0 if longest == 0 else cp / longest,
        "a": a.as_dict(),
        "b": b.as_dict(),
    }


def answer_signal(texts: list[str]) -> dict[str, Any]:
    """Whether one engine's answers can tell two engines apart at all.

    Under dummy weights (SGLang's and vLLM's loaders fill every parameter with the same small uniform values) the
    logits come out nearly flat and greedy decoding can return one token forever, e.g. ``<pad> <pad> ...`` for
    every prompt: two such engines match on every prompt, and the match says nothing. ``degenerate`` is true when
    every answer is one whitespace token repeated (or empty), or when all answers are the same text although the
    prompts differ."""
    words = [t.split() for t in texts]
    one_token = [len(set(w)) <= 1 for w in words]
    distinct = len({t.strip() for t in texts})
    repeated = sorted({w[0] for w in words if w and len(set(w)) == 1})
    degenerate = bool(texts) and (all(one_token) or (len(texts) > 1 and distinct == 1))
    return {"answers": len(texts), "distinct_texts": distinct, "one_repeated_token": sum(one_token),
            "repeated_tokens": repeated[:5], "degenerate": degenerate}


def parity_signal(per_prompt: list[dict[str, Any]]) -> dict[str, Any]:
    """``answer_signal`` of both sides of a parity record, and whether the record carries any information."""
    sides = {}
    for side in ("a", "b"):
        texts = [str((row.get(side) or {}).get("text") or "") for row in per_prompt
                 if not (row.get(side) or {}).get("error")]
        sides[side] = answer_signal(texts)
    informative = not (sides["a"]["degenerate"] and sides["b"]["degenerate"])
    why = None
    if not informative:
        def looks(s: dict[str, Any]) -> str:
            toks = " / ".join(repr(t) for t in s["repeated_tokens"])
            if s["one_repeated_token"] == s["answers"]:
                return f"{toks} repeated" if toks else "empty"
            return "the same text for every prompt"

        la, lb = looks(sides["a"]), looks(sides["b"])
        why = (f"every answer of both engines is {la}" if la == lb else f"every answer is {la} (a) / {lb} (b)")
        why += ": matches and mismatches carry no information"
    return {"a": sides["a"], "b": sides["b"], "informative": informative, "why": why}


def compare_runs(
    a: list[Generation],
    b: list[Generation],
    *,
    prompts: PromptSet,
    prompts_path: str,
    prompts_sha256: str,
    meta_a: dict[str, Any],
    meta_b: dict[str, Any],
    model: str,
    max_tokens: int,
    started_at: str,
) -> dict[str, Any]:
    if [g.id for g in a] != [p.id for p in prompts.prompts] or [g.id for g in b] != [p.id for p in prompts.prompts]:
        raise HarnessError("parity: generations do not line up with the prompt set")
    per = [compare_pair(x, y) for x, y in zip(a, b)]
    for row, p in zip(per, prompts.prompts):
        row["category"] = p.category
    k = sum(r["exact_match"] for r in per)
    return {
        "kind": "parity",
        "schema_version": PARITY_SCHEMA_VERSION,
        "harness_version": __version__,
        "model": model,
        "a": meta_a,
        "b": meta_b,
        "prompts": {"path": prompts_path, "sha256": prompts_sha256, "name": prompts.name,
                    "version": prompts.version, "count": len(prompts.prompts)},
        "sampling": {"api": "chat", "temperature": 0.0, "top_p": 1.0, "max_tokens": max_tokens,
                     "logprobs": "requested (fallback without on BadRequest)"},
        "matches": k,
        "n": len(per),
        "match_rate": k / len(per),
        "mean_common_prefix_ratio": sum(r["common_prefix_ratio"] for r in per) / len(per),
        "errors": {"a": sum(1 for g in a if g.error), "b": sum(1 for g in b if g.error)},
        "signal": parity_signal(per),
        "per_prompt": per,
        "started_at": started_at,
        "finished_at": dt.datetime.now(dt.timezone.utc).isoformat(timespec="seconds"),
    }
