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
``divergence``
    how close the two engines were where they parted: ``None`` unless the texts differ at a token index ``i``
    (``token_method: "logprobs"``) that both sides have a token at and both listed alternatives for
    (``top_logprobs``, requested with ``top_logprobs=2``: the choice and its runner-up).  Otherwise
    ``{"index": i, "a_token", "b_token",
    "a_margin", "a_margin_bound", "b_margin", "b_margin_bound", "a_top_logprobs", "b_top_logprobs"}``:
    ``a_margin`` = logprob_A(a_token) - logprob_A(b_token) in nats, from A's own logprobs at ``i``, when
    ``b_token`` is among A's alternatives there, else ``None`` and ``a_margin_bound`` = A's chosen logprob minus
    the lowest alternative A listed (b_token ranks below all of them, so the margin is at least that; ``None``
    when ``a_margin`` is known).  ``b_*`` the same from B's side.  ``*_top_logprobs`` are the alternatives each
    side listed at ``i`` (token -> logprob).  A small margin on both sides is a near-tie that rounding can flip;
    a large one, or a rival token outside the other side's top list, is not.
``a`` / ``b`` (per prompt)
    each side's generation: ``text``, ``tokens``, ``token_logprobs`` (the chosen token's logprob per position,
    ``None`` when not returned), ``completion_tokens``, ``prompt_tokens`` (the server's count of the rendered
    prompt), ``finish_reason``, ``error``, ``latency_s``.  The
    alternatives at every position (``top_logprobs``) are left out of the record (they would make it several
    times larger; ``divergence`` keeps those at ``i``); the generations `harness compare --parity`
    stores (``evals/generations-<engine>__mtp-X.json``) keep them all.

The summary is ``match_rate = matches / prompts``, ``mean_common_prefix_ratio`` and ``divergence_margins``:
``{"threshold_nats": NEAR_TIE_NATS, "divergent": prompts whose texts part at a token, "with_margins": those of
them with both margins, "near_ties": those with max(a_margin, b_margin) <= threshold_nats, "max_margin": the
largest max(a_margin, b_margin) among them (None when none has margins), "rival_unlisted": divergences where a
side did not list the other's token among its alternatives}``, and ``prompt_tokens``: ``{"known": prompts both
servers counted, "differ": [{"id", "a", "b"}]}`` (a different count: the engines rendered or tokenized the prompt
differently, so they did not answer the same input).  Records and generation files written before these fields
existed have none of them; they still load.

Batching: ``generate_all`` sends ``concurrency`` prompts at a time (1 by default).  With more than one, which
prompts share a prefill or decode batch depends on when each request reaches the server, so the GEMM shapes, and
with them the bf16 rounding, differ from run to run; on near-flat logits (random-init checkpoints) that alone flips
first tokens, and two runs of identical kernels can then match on no prompt.  One at a time, every prompt's batch
is itself only, so the record compares numerics, not batch composition.  The stored generations file and each side
block of a record (``a`` / ``b`` at the top) say ``concurrency`` (``None`` in a record when its source predates
the key), and the record's ``batching`` says ``{"batch_invariant": both sides sent one at a time, "why": None or
what was not (``batching_text``)}``.
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

# divergence / divergence_margins / batching are additive: readers use .get, old records stay valid
PARITY_SCHEMA_VERSION = 1

# How many candidates per position generate_all asks for (the chosen token and its runner-up; OpenAI's chat API
# allows 0..20, vLLM caps it at its --max-logprobs, 20 by default). Two are enough to tell a near-tie: where two
# engines part, each one's runner-up is the other's choice exactly when the two candidates were close. When it is
# not, the margin is only bounded below (a_margin_bound) by the gap to the runner-up. More would multiply the
# stored generation files (committed with their runs): 20 prompts x 256 positions x N candidates.
DEFAULT_TOP_LOGPROBS = 2

# Two candidates whose logprobs are this close (nats) are a near-tie that bf16 rounding can flip (a logprob
# difference is the logit difference: the softmax normaliser cancels).  bf16 keeps 8 significant bits (~3
# significant decimal digits): a logit of magnitude 10-30 sits on a grid of 0.0625-0.125, so each logit is off by
# up to ~0.03-0.06 and the difference of two by up to ~0.06-0.12; add the reduction order of the matmuls and
# attention (which differs between two kernels, or one kernel under two batch shapes) and two correct engines can
# rank candidates within ~0.1 nats of each other either way.  A gap well above it is not rounding noise.
NEAR_TIE_NATS = 0.1

# logprobs are stored to this many decimals (far below NEAR_TIE_NATS; keeps the generation files small)
_LOGPROB_DECIMALS = 4


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
    # new fields default to None: generation files stored before they existed still load (Generation(**g))
    token_logprobs: list[float | None] | None = None  # the chosen token's logprob per position
    top_logprobs: list[dict[str, float]] | None = None  # per position: the alternatives listed, token -> logprob
    prompt_tokens: int | None = None  # the server's count of the rendered prompt (usage.prompt_tokens)

    def as_dict(self) -> dict[str, Any]:
        return dict(self.__dict__)


def _round_lp(v: float | None) -> float | None:
    return None if v is None else round(v, _LOGPROB_DECIMALS)


def _is_bad_request(res: chat_client.ChatResult) -> bool:
    return bool(res.error) and res.error.startswith(("BadRequestError", "UnprocessableEntityError"))


def generate_all(
    base_url: str,
    served_model: str,
    prompts: PromptSet,
    *,
    max_tokens: int = 256,
    concurrency: int = 1,
    logprobs: bool = True,
    top_logprobs: int | None = DEFAULT_TOP_LOGPROBS,
    tries: int = 6,
    backoff_s: float = 1.0,
    extra_body: dict[str, Any] | None = None,
) -> list[Generation]:
    """Greedy generation for every prompt, in prompt order (independent of how the server was started).

    ``concurrency`` prompts are in flight at a time; 1 (the default) keeps each prompt's batch independent of the
    others' timing (see the module docstring's "Batching").

    Asks for logprobs with ``top_logprobs`` alternatives per position; a server that answers BadRequest is asked
    again without ``top_logprobs``, then without logprobs at all."""
    cl = chat_client.make_client(base_url, timeout=600.0, max_connections=max(concurrency, 8))

    def one(p: ParityPrompt) -> Generation:
        mt = p.max_tokens or max_tokens
        kw = dict(max_tokens=mt, temperature=0.0, top_p=1.0, tries=tries, backoff_s=backoff_s,
                  extra_body=extra_body)
        res = chat_client.chat_once(cl, served_model, p.chat_messages(), logprobs=logprobs,
                                    top_logprobs=top_logprobs if logprobs else None, **kw)
        if logprobs and top_logprobs is not None and _is_bad_request(res):
            res = chat_client.chat_once(cl, served_model, p.chat_messages(), logprobs=True, **kw)
        if logprobs and _is_bad_request(res):
            res = chat_client.chat_once(cl, served_model, p.chat_messages(), logprobs=False, **kw)
        if res.fatal:
            raise HarnessError(f"parity against {base_url} (model {served_model!r}): {res.error}")
        return Generation(
            p.id, res.text, res.tokens, res.completion_tokens, res.finish_reason, res.error, round(res.latency_s, 4),
            token_logprobs=None if res.token_logprobs is None else [_round_lp(v) for v in res.token_logprobs],
            top_logprobs=None if res.top_logprobs is None else [{t: _round_lp(v) for t, v in alts.items()}
                                                                for alts in res.top_logprobs],
            prompt_tokens=res.prompt_tokens)

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


def _at(seq: list | None, i: int) -> Any:
    return seq[i] if seq is not None and 0 <= i < len(seq) else None


def _side_margin(g: Generation, i: int, own: str, rival: str) -> tuple[float | None, float | None]:
    """(margin, bound) of one side at position ``i``: its logprob of its own token minus its logprob of the rival
    token when it listed the rival, else (None, its chosen logprob minus its lowest listed alternative)."""
    alts = _at(g.top_logprobs, i) or {}
    chosen = _at(g.token_logprobs, i)
    if chosen is None:
        chosen = alts.get(own)
    if chosen is None or not alts:
        return None, None
    if rival in alts:
        return round(chosen - alts[rival], _LOGPROB_DECIMALS), None
    return None, round(chosen - min(alts.values()), _LOGPROB_DECIMALS)


def divergence_block(a: Generation, b: Generation, i: int | None) -> dict[str, Any] | None:
    """The ``divergence`` entry of a per-prompt row (see the module docstring), or None."""
    if i is None or a.tokens is None or b.tokens is None or i >= min(len(a.tokens), len(b.tokens)):
        return None
    a_alts, b_alts = _at(a.top_logprobs, i), _at(b.top_logprobs, i)
    if not a_alts or not b_alts:
        return None
    a_tok, b_tok = a.tokens[i], b.tokens[i]
    a_margin, a_bound = _side_margin(a, i, a_tok, b_tok)
    b_margin, b_bound = _side_margin(b, i, b_tok, a_tok)
    return {"index": i, "a_token": a_tok, "b_token": b_tok,
            "a_margin": a_margin, "a_margin_bound": a_bound, "b_margin": b_margin, "b_margin_bound": b_bound,
            "a_top_logprobs": dict(a_alts), "b_top_logprobs": dict(b_alts)}


def _record_side(g: Generation) -> dict[str, Any]:
    """A generation as the record keeps it: everything but the per-position alternatives (those are in the
    stored generations; the row's ``divergence`` keeps the ones at the first divergence)."""
    d = g.as_dict()
    d.pop("top_logprobs", None)
    return d


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
        "divergence": divergence_block(a, b, tok) if method == "logprobs" else None,
        "a": _record_side(a),
        "b": _record_side(b),
    }


def prompt_inputs(a: list[Generation], b: list[Generation]) -> dict[str, Any]:
    """Did both engines get the same input? The servers' prompt token counts (``usage.prompt_tokens``) per
    prompt: ``{"known": prompts both sides counted, "differ": [{"id", "a", "b"}, ...]}``. A different count means
    the chat template or the tokenizer rendered the prompt differently, so a mismatch there says nothing about the
    numerics."""
    known = [(x, y) for x, y in zip(a, b) if x.prompt_tokens is not None and y.prompt_tokens is not None]
    return {"known": len(known), "differ": [{"id": x.id, "a": x.prompt_tokens, "b": y.prompt_tokens}
                                            for x, y in known if x.prompt_tokens != y.prompt_tokens]}


def divergence_margins(per_prompt: list[dict[str, Any]], threshold: float = NEAR_TIE_NATS) -> dict[str, Any]:
    """The record's ``divergence_margins`` summary of its per-prompt rows (see the module docstring)."""
    divergent = [r for r in per_prompt if r.get("token_divergence") is not None]
    margins = []
    unlisted = 0
    for r in divergent:
        d = r.get("divergence") or {}
        if any(d.get(f"{s}_margin") is None and d.get(f"{s}_margin_bound") is not None for s in ("a", "b")):
            unlisted += 1
        if d.get("a_margin") is not None and d.get("b_margin") is not None:
            margins.append(max(d["a_margin"], d["b_margin"]))
    return {"threshold_nats": threshold, "divergent": len(divergent), "with_margins": len(margins),
            "near_ties": sum(1 for m in margins if m <= threshold),
            "max_margin": max(margins) if margins else None, "rival_unlisted": unlisted}


def divergence_margins_text(dm: dict[str, Any] | None) -> str:
    """One line for a ``divergence_margins`` summary, e.g. '12/19 near-ties (≤0.1 nats; max 0.43)'."""
    if not isinstance(dm, dict):
        return "not recorded"
    n, k = dm.get("divergent") or 0, dm.get("with_margins") or 0
    if n == 0:
        return "no divergence"
    thr = dm.get("threshold_nats", NEAR_TIE_NATS)
    if k == 0:
        return f"no margins for {n} divergence{'s' if n != 1 else ''}"
    mx = dm.get("max_margin")
    text = f"{dm.get('near_ties', 0)}/{k} near-ties (≤{thr:g} nats; max {'?' if mx is None else f'{mx:.3g}'})"
    if k < n:
        u = dm.get("rival_unlisted") or 0
        text += f"; {n - k} of {n} without both margins" + (f" ({u}: a rival token outside the top list)" if u else "")
    return text


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


def batching_text(concurrency_a: int | None, concurrency_b: int | None) -> str:
    """How the two sides sent their prompts, e.g. 'prompts sent 8 at a time: batch composition varied',
    'prompts sent one at a time', or 'concurrency not recorded' (the source predates the key)."""
    def sent(c: int | None) -> str:
        return "concurrency not recorded" if c is None else f"prompts sent {'one' if c == 1 else c} at a time"

    text = sent(concurrency_a) if concurrency_a == concurrency_b else \
        f"{sent(concurrency_a)} (a) / {sent(concurrency_b)} (b)"
    if any(c is not None and c > 1 for c in (concurrency_a, concurrency_b)):
        text += ": batch composition varied"
    return text


def batching(concurrency_a: int | None, concurrency_b: int | None) -> dict[str, Any]:
    """The record's ``batching``: ``batch_invariant`` when both sides sent their prompts one at a time (no
    prompt's batch depended on the others' timing), else ``why`` says what was not (see ``batching_text``)."""
    invariant = concurrency_a == 1 and concurrency_b == 1
    return {"batch_invariant": invariant, "why": None if invariant else batching_text(concurrency_a, concurrency_b)}


def _logprobs_returned(gens: list[Generation]) -> str:
    """What a side's answers carry (the request asks for top_logprobs, then falls back on BadRequest; generations
    stored by an older harness never had alternatives): the record says what was there, not what was asked."""
    if any(g.top_logprobs for g in gens):
        return "tokens, logprobs and alternatives"
    if any(g.token_logprobs for g in gens):
        return "tokens and logprobs"
    if any(g.tokens for g in gens):
        return "tokens only"
    return "none"


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
    # each side says its concurrency (None: its source did not record it)
    meta_a, meta_b = ({**m, "concurrency": m.get("concurrency")} for m in (meta_a, meta_b))
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
                     "logprobs": {"a": _logprobs_returned(a), "b": _logprobs_returned(b)}},
        "matches": k,
        "n": len(per),
        "match_rate": k / len(per),
        "mean_common_prefix_ratio": sum(r["common_prefix_ratio"] for r in per) / len(per),
        "divergence_margins": divergence_margins(per),
        "errors": {"a": sum(1 for g in a if g.error), "b": sum(1 for g in b if g.error)},
        "signal": parity_signal(per),
        "batching": batching(meta_a["concurrency"], meta_b["concurrency"]),
        "prompt_tokens": prompt_inputs(a, b),
        "per_prompt": per,
        "started_at": started_at,
        "finished_at": dt.datetime.now(dt.timezone.utc).isoformat(timespec="seconds"),
    }
