"""The command line's arguments: every command, its options and its help text. Only the standard
library and small modules load here, so `reflectchat --help` stays fast."""

from __future__ import annotations

import argparse
from pathlib import Path

from reflectchat.cli.option_values import MANY, MAX_CTX, MAX_LAYERS, SESSION_ID, real, whole
from reflectchat.engine.base import (
    DEFAULT_CTX,
    DEFAULT_SPECULATION,
    EFFORTS,
    FORMAT_NAMES,
    KV_TYPES,
    MAX_TEMPERATURE,
    SPECULATION,
)
from reflectchat.eval.items import BENCHMARKS
from reflectchat.store.records import CHANNELS
from reflectchat.versions import installed

FORMATS = FORMAT_NAMES


class _Version(argparse.Action):
    """`--version`, its version looked up only when asked for (see `reflectchat/versions.py`)."""

    def __init__(self, option_strings: list[str], dest: str = argparse.SUPPRESS,
                 default: str = argparse.SUPPRESS, help: str | None = None) -> None:
        super().__init__(option_strings, dest, nargs=0, default=default,
                         help=help or "show the program's version number and exit")

    def __call__(self, parser: argparse.ArgumentParser, namespace: argparse.Namespace,
                 values: object, option_string: str | None = None) -> None:
        print(f"reflectchat {installed('reflectchat')}")  # on stdout, as argparse's own does
        parser.exit()


def _add_model_options(p: argparse.ArgumentParser) -> None:
    m = p.add_argument_group("model")
    m.add_argument("--model", metavar="PATH_OR_ID",
                   help="a GGUF file (first shard of a split one) or a catalog model id; "
                        "with --endpoint, the server's model name")
    m.add_argument("--quant", metavar="Q", help="quantization of a catalog model, e.g. Q4_K_M")
    m.add_argument("--demo", action="store_true",
                   help="use the built-in demo model (also the default with no --model)")
    m.add_argument("--endpoint", metavar="URL_OR_NAME",
                   help="use an OpenAI-compatible server (llama-server, vLLM, Ollama, ...): "
                        "its URL, or an [endpoints.NAME] table in config.toml")
    m.add_argument("--api-key-env", metavar="VAR",
                   help="the environment variable holding the server's API key")
    m.add_argument("--timeout", type=real(0, 86_400, low_open=True), metavar="S",
                   help="with --endpoint: seconds to wait for the server's next streamed "
                        "event (default: the endpoint's, else 180)")
    m.add_argument("--format", choices=FORMATS,
                   help="how the model marks reasoning (default: what the model file says, "
                        "else the catalog's, else auto)")
    m.add_argument("--think-tags", metavar="OPEN,CLOSE",
                   help="the model marks its thinking with these tags (a family reflectchat "
                        "does not know yet), e.g. '<reason>,</reason>'; a tag may hold spaces "
                        "inside, not at either end; OPEN may be empty: all before CLOSE is "
                        "thinking (',[BEGIN FINAL RESPONSE]')")
    m.add_argument("--answer-tags", metavar="OPEN,END",
                   help="with --think-tags: what wraps the model's answer, either part may be "
                        "empty, e.g. ',[END FINAL RESPONSE]' (everything from END on is hidden)")
    r = p.add_argument_group("runtime")
    r.add_argument("--gpu-layers", type=whole(-1, MAX_LAYERS), metavar="N",
                   help="layers to offload to the GPU, -1 for all (default: all when this "
                        "llama.cpp build can offload, else 0)")
    r.add_argument("--ctx", type=whole(16, MAX_CTX), metavar="N",
                   help=f"context size in tokens (default: {DEFAULT_CTX}, or a catalog "
                        "model's context if smaller)")
    r.add_argument("--flash-attn", action="store_true", help="use flash attention")
    r.add_argument("--cache-type-k", choices=KV_TYPES, default="f16", help="KV cache type for K")
    r.add_argument("--cache-type-v", choices=KV_TYPES, default="f16",
                   help="KV cache type for V (quantized types need --flash-attn)")
    r.add_argument("--tensor-split", metavar="A,B,...",
                   help="share of the model per GPU, e.g. 3,1")
    r.add_argument("--threads", type=whole(1, 1024), metavar="N",
                   help="CPU threads for answers and prompts (default: one per physical core "
                        "for answers, every CPU for prompts, as llama.cpp; `hw` shows them)")
    r.add_argument("--repack", choices=("auto", "on", "off"), default="auto",
                   help="llama.cpp's repacked CPU weights: faster CPU kernels (default auto: on, "
                        "except on CPUs with AMX, where they crash some models)")
    r.add_argument("--template", metavar="NAME",
                   help="chat template: 'model' (the GGUF's own, the default when it has one) "
                        "or one of llama.cpp's built-in templates (chatml, llama3, gemma, ...); "
                        "without either, one is chosen by the model's architecture")
    r.add_argument("--cpu-moe", action="store_true",
                   help="a mixture of experts: keep every layer's experts in RAM, the rest on "
                        "the GPU (default: as few as the memory plan needs)")
    r.add_argument("--n-cpu-moe", type=whole(0, MAX_LAYERS), metavar="N",
                   help="a mixture of experts: keep the experts of the first N layers in RAM")
    r.add_argument("--override-tensor", "-ot", action="append", metavar="PATTERN=BUFFER",
                   help="put tensors whose name matches PATTERN in BUFFER (CPU, CUDA0, ...), "
                        "as llama.cpp's -ot; repeatable")
    r.add_argument("--no-mmap", action="store_true", help="read the model into memory")
    r.add_argument("--mlock", action="store_true", help="lock the model in RAM")
    s = p.add_argument_group("speculative decoding (the model checks drafted tokens in one "
                             "batch; greedy answers keep the model's own tokens)")
    s.add_argument("--spec", choices=SPECULATION, default=None,
                   help="what drafts tokens: ngram (earlier text of the same context: pays "
                        "where an answer restates its thinking or code), draft (a small model, "
                        "--draft-model), off (default: draft with --draft-model, else "
                        f"{DEFAULT_SPECULATION})")
    s.add_argument("--draft-model", metavar="PATH_OR_ID",
                   help="a small GGUF of the same vocabulary, or a catalog id (`models` names "
                        "one for each family), that drafts for the model")
    s.add_argument("--draft-max", type=whole(1, 64), metavar="N",
                   help="the most tokens drafted at a time (default 8 for a model, 16 for "
                        "n-grams)")
    s.add_argument("--draft-p-min", type=real(0, 1), metavar="P",
                   help="a draft model stops drafting where its top token is less likely "
                        "than P (default 0.5)")
    s.add_argument("--draft-gpu-layers", type=whole(-1, MAX_LAYERS), metavar="N",
                   help="the draft model's layers on the GPU (default: all when it fits "
                        "beside the model, as the memory plan says)")


def _add_sessions_parser(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("sessions", help="list, search, export, import or delete saved sessions",
                       description="The session history: every chat in the app and every "
                                   "`ask` (unless --no-save).")
    cmd = p.add_subparsers(dest="action", metavar="ACTION", required=True)
    c = cmd.add_parser("list", help="sessions, newest first")
    c.add_argument("--limit", type=whole(1, MANY), metavar="N", help="show only the newest N")
    c.add_argument("--json", action="store_true", help="print JSON")
    c = cmd.add_parser("show", help="print a session's prompts, reasoning and outputs")
    c.add_argument("id", type=SESSION_ID)
    c.add_argument("--json", action="store_true", help="print the session as JSON")
    c = cmd.add_parser("search", help="full-text search across sessions")
    c.add_argument("query", nargs="?", default="",
                   help="words to find (the last may be the start of a word); with "
                        "--corrected it may be left out")
    c.add_argument("--channel", action="append", choices=CHANNELS,
                   help="search only this channel (repeatable)")
    c.add_argument("--corrected", action="store_true",
                   help="only answers where the model corrected itself (with reflections)")
    c.add_argument("--limit", type=whole(1, MANY), default=50, metavar="N", help="at most N hits")
    c.add_argument("--json", action="store_true", help="print JSON")
    c = cmd.add_parser("export", help="write a session as Markdown or JSON")
    c.add_argument("id", type=SESSION_ID)
    c.add_argument("--format", choices=("markdown", "md", "json"), default="markdown",
                   help="markdown (or md) for reading, json to import again")
    c.add_argument("-o", "--output", type=Path, metavar="FILE", help="file (default: stdout)")
    c = cmd.add_parser("import", help="add a session from a JSON export")
    c.add_argument("file", type=Path)
    c.add_argument("--json", action="store_true", help="print the new id as JSON")
    c = cmd.add_parser("delete", help="delete a session")
    c.add_argument("id", type=SESSION_ID)
    c.add_argument("--yes", action="store_true", help="do not ask for confirmation")
    cmd.add_parser("stats", help="which setup your marks preferred, per pair of setups "
                                 "compared (F10), with a 95%% interval").add_argument(
        "--json", action="store_true", help="print JSON")
    c = cmd.add_parser("contexts", help="the model contexts saved with sessions (so `ask "
                                        "--session` goes on at once): their disk space")
    c.add_argument("--clear", action="store_true", help="delete them all (sessions stay)")


def _add_answer_options(p: argparse.ArgumentParser) -> argparse._ArgumentGroup:
    g = p.add_argument_group("answer")
    g.add_argument("--max-tokens", type=whole(1, MANY), metavar="N",
                   help="stop after N answer tokens (default: the room left in the context)")
    g.add_argument("--effort", choices=EFFORTS,
                   help="how much the model reasons, where its template lets it (gpt-oss: "
                        "low/medium/high; Qwen3, Granite: off or on); off ends any model's "
                        "thinking at once (default: the model's own)")
    g.add_argument("--thinking-budget", type=whole(0, MANY), metavar="N",
                   help="end the model's thinking after N tokens and let it answer")
    g.add_argument("--no-loop-stop", action="store_true",
                   help="let an answer that repeats itself run on (to the token limit)")
    g.add_argument("--system", metavar="TEXT", help="system prompt (default: the catalog's)")
    g.add_argument("--temperature", type=real(0, MAX_TEMPERATURE), metavar="T",
                   help="sampling temperature")
    return g


def _add_eval_parser(sub: argparse._SubParsersAction) -> None:
    ev = sub.add_parser(
        "eval", help="check a model's reasoning on GSM8K, MATH-500 or your own set",
        description="Answer a benchmark's items (a fixed sample with --n) under one or more "
                    "reasoning settings, check each answer as the benchmark does, and show "
                    "accuracy with 95% intervals, the paired difference between settings and "
                    "what the reflections fixed and broke. Results are kept per item: Ctrl+C "
                    "stops, and the same command resumes.")
    source = ev.add_mutually_exclusive_group()
    source.add_argument("--bench", choices=sorted(BENCHMARKS), default="gsm8k",
                        help="GSM8K's test split or MATH-500, from the Hugging Face Hub "
                             "(downloaded once into its cache; default gsm8k)")
    source.add_argument("--file", metavar="PATH.jsonl",
                        help="your own set: one JSON object per line with \"question\" (or "
                             "\"problem\") and \"answer\" (a number, or GSM8K's '#### N'), "
                             "an \"id\" optional")
    ev.add_argument("--check", choices=("number", "math"), default="number",
                    help="with --file: compare final numbers, or LaTeX answers as mathematics "
                         "(math-verify)")
    ev.add_argument("--n", type=whole(1, MANY), metavar="N",
                    help="a sample of N items (default: all)")
    ev.add_argument("--seed", type=whole(0, 2**31 - 1), default=0,
                    help="the sample's seed, and each item's sampling seed (default 0)")
    ev.add_argument("--settings", default="default", metavar="A,B,...",
                    help="reasoning settings to compare on the same items, interleaved: "
                         "default, off, low, medium, high, budget:N, or two joined by + "
                         "(e.g. default,off,high+budget:1024)")
    ev.add_argument("--vs", action="append", metavar="MODEL",
                    help="another model or quant to answer the same items, interleaved with "
                         "the first (repeat for more): a GGUF file, a catalog id with :QUANT, "
                         "a server's URL or endpoint:NAME; every option given applies to each. "
                         "Two models run here are never loaded at once: they take turns every "
                         "10 items")
    ev.add_argument("--parallel", type=whole(1, 64), default=1, metavar="N",
                    help="with --endpoint: N answers in flight at once (the server batches "
                         "them)")
    ev.add_argument("--json", action="store_true", help="print the table as JSON")
    ev.add_argument("--report", metavar="PATH.md", help="also write the table as Markdown")
    ev.add_argument("--save-sessions", action="store_true",
                    help="also keep each answer as a session in the history")
    _add_model_options(ev)
    _add_answer_options(ev)


def _add_web_options(web: argparse.ArgumentParser) -> None:
    web.add_argument("--host", default="127.0.0.1",
                     help="address to listen on (default: 127.0.0.1, this machine only)")
    web.add_argument("--port", type=whole(1, 65_535), default=8000, help="port (default: 8000)")
    web.add_argument("--public", action="store_true",
                     help="allow a non-loopback --host: anyone who reaches it can chat with "
                          "your model and read your sessions (there is no login)")
    _add_model_options(web)
    _add_answer_options(web)
    web.add_argument("--resume", nargs="?", const="latest", metavar="ID",
                     help="open the app on a saved session (default: the latest)")


def _add_tune_parser(sub: argparse._SubParsersAction) -> None:
    tune = sub.add_parser("tune", help="Selective Reflection-Tuning: a dataset from your chats",
                          description="Score your saved (prompt, output) pairs (IFD, r-IFD), "
                                      "have a teacher reflect on them, select by the rule and "
                                      "export a JSONL dataset.")
    steps = tune.add_subparsers(dest="action", metavar="STEP", required=True)

    def pick(p: argparse.ArgumentParser) -> None:
        p.add_argument("--sessions", metavar="IDS", help="only these sessions, e.g. 3,7")
        p.add_argument("--all", action="store_true", help="every session (the default)")
        p.add_argument("--include-cut", action="store_true",
                       help="also use answers cut at the token limit (left out by default: "
                            "a cut answer is not the model's whole answer)")

    score = steps.add_parser("score", help="IFD and r-IFD of each pair, with the loaded model")
    pick(score)
    _add_model_options(score)
    score.add_argument("--json", action="store_true", help="print the scores as JSON")
    reflect = steps.add_parser("reflect", help="the teacher rewrites each scored pair")
    pick(reflect)
    _add_model_options(reflect)
    _add_answer_options(reflect)
    reflect.add_argument("--redo", action="store_true", help="reflect pairs done before again")
    reflect.add_argument("--json", action="store_true", help="print the rewrites as JSON")
    select = steps.add_parser("select", help="the selection rule's verdict per pair")
    pick(select)
    select.add_argument("--json", action="store_true", help="print JSON")
    export = steps.add_parser("export", help="the kept pairs as a JSONL dataset")
    pick(export)
    export.add_argument("--format", choices=("alpaca", "sharegpt", "messages"),
                        default="messages", help="record format (default: messages)")
    export.add_argument("-o", "--output", required=True, metavar="FILE.jsonl")
    export.add_argument("--preferences", action="store_true",
                        help="the answers you compared (F10) and marked: prompt, chosen, "
                             "rejected, for TRL's DPOTrainer (messages) or LLaMA-Factory")
    export.add_argument("--reasoning", choices=("drop", "keep", "field"), default="drop",
                        help="keep: original answers keep their thinking and reflection tags; "
                             "field (--format messages): the reasoning goes in the assistant "
                             "message's reasoning_content, as Axolotl and reasoning models' "
                             "chat templates read it")


def web_parser() -> argparse.ArgumentParser:
    """`web`'s own options, alone: which of them go on to the app it serves."""
    parser = argparse.ArgumentParser(prog="reflectchat web", add_help=False)
    _add_web_options(parser)
    return parser


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="reflectchat", allow_abbrev=False,  # else `eval --n` is taken for --n-cpu-moe
        description="Chat with a local reasoning model and see its thinking, reflections "
                    "and output. With no command, opens the chat app.",
    )
    parser.add_argument("--version", action=_Version)
    _add_model_options(parser)
    _add_answer_options(parser)
    parser.add_argument("--resume", nargs="?", const="latest", metavar="ID",
                        help="open the app on a saved session (default: the latest)")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND")
    ask = sub.add_parser("ask", help="ask one question and stream the answer (no UI)",
                         description="Ask one question and stream the thinking, reflections "
                                     "and output to the terminal.")
    ask.add_argument("prompt", nargs="?", help="the question (read from stdin when omitted)")
    _add_tune_parser(sub)
    web = sub.add_parser("web", help="serve the app to a browser (needs the web extra)",
                         description="Serve the same app in a browser with textual-serve. "
                                     "Model and answer options go on to the app.")
    _add_web_options(web)
    _add_model_options(ask)
    g = _add_answer_options(ask)
    g.add_argument("--json", action="store_true", help="print one JSON object at the end")
    g.add_argument("--no-save", action="store_true",
                   help="do not record this exchange in the session history")
    going_on = g.add_mutually_exclusive_group()
    going_on.add_argument("--session", type=SESSION_ID, metavar="ID",
                          help="go on with this saved session: the model answers with the "
                               "conversation so far, and the turn is added to it (see "
                               "`reflectchat sessions list`)")
    going_on.add_argument("--continue", dest="continue_latest", action="store_true",
                          help="go on with the latest session, as --session does")
    _add_sessions_parser(sub)
    _add_eval_parser(sub)
    pull = sub.add_parser("pull", help="download a catalog model's quant into the Hugging "
                                       "Face cache (resumable, sha256-verified)")
    pull.add_argument("model", help="a catalog model id (see `reflectchat models`)")
    pull.add_argument("--quant", default="auto",
                      help="the quantization, or auto: the one recommended for this machine")
    hw = sub.add_parser("hw", help="CPU, RAM and GPUs, and what llama.cpp can offload to")
    hw.add_argument("--json", action="store_true", help="print JSON (sizes in bytes)")
    doctor = sub.add_parser("doctor", help="check that llama.cpp is built for this machine's GPU")
    doctor.add_argument("--json", action="store_true", help="print the findings as JSON")
    doctor.add_argument("--model", metavar="PATH_OR_ID",
                        help="with --draft-model: check that the two can be used together "
                             "(config.toml's draft pairs are checked too)")
    doctor.add_argument("--draft-model", metavar="PATH_OR_ID",
                        help="the draft model to check against --model")
    models = sub.add_parser("models", help="catalog models and quants and how each fits this "
                                           "machine; with --endpoint, what a server offers")
    models.add_argument("model_id", nargs="?", metavar="MODEL",
                        help="only this catalog model, with exact sizes read from the headers "
                             "of its files on the hub; or a GGUF file, planned from its header")
    models.add_argument("--endpoint", metavar="URL_OR_NAME",
                        help="list a server's models (/v1/models) instead: its URL, or an "
                             "[endpoints.NAME] in config.toml")
    models.add_argument("--ctx", type=whole(16, MAX_CTX), metavar="N",
                        help=f"context size to plan for (default {DEFAULT_CTX})")
    models.add_argument("--api-key-env", metavar="VAR",
                        help="the environment variable holding the server's API key")
    models.add_argument("--tensor-split", metavar="A,B,...",
                        help="plan each GPU's share of the layers, e.g. 3,1 (default: by free "
                             "memory, as llama.cpp does)")
    models.add_argument("--gpu", action="append", metavar="CARD",
                        help="plan for this GPU instead of this machine's (repeat for several): "
                             "its memory (24GiB), a card name for its bandwidth and memory "
                             "(RTX 4090), or both (A100:40GiB)")
    models.add_argument("--ram", metavar="SIZE",
                        help="plan for this much installed RAM instead of this machine's "
                             "(64GiB); plans leave an eighth of it, at least 2 GiB, to the "
                             "system")
    models.add_argument("--local", action="store_true",
                        help="GGUFs other tools downloaded (Hugging Face and llama.cpp caches, "
                             "Ollama, LM Studio), planned from their headers; run one with "
                             "--model PATH")
    models.add_argument("--draft-model", metavar="PATH",
                        help="with a GGUF file: plan this draft model beside it (speculative "
                             "decoding) and the speed-up to expect")
    models.add_argument("--draft-max", type=whole(1, 64), default=8, metavar="N",
                        help="tokens drafted at a time, for the expected speed-up (default 8)")
    models.add_argument("--json", action="store_true",
                        help="print JSON: the plans (sizes in bytes), or the server's list")
    return parser
