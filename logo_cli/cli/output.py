"""Everything the command line shows people or scripts: JSON lines on stdout, tables and notes on stderr or a
terminal, progress bars. Commands call these; nothing here computes what it shows."""

from __future__ import annotations

import sys
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import TYPE_CHECKING, Any, Protocol

import orjson

from .state import CliState

if TYPE_CHECKING:
    from ..evaluate import EvalReport


def stderr(run: CliState, *, always: bool = False) -> Any:
    """The console for people. --quiet silences it, except for errors (`always`)."""
    from rich.console import Console

    return Console(stderr=True, highlight=False, quiet=run.quiet and not always)


def emit(obj: Any) -> None:
    """One JSON line on stdout."""
    sys.stdout.write(orjson.dumps(obj, option=orjson.OPT_NON_STR_KEYS).decode() + "\n")
    sys.stdout.flush()


def is_terminal() -> bool:
    return sys.stdout.isatty()


class Update(Protocol):
    def __call__(self, done: int, total: int | None = None) -> None: ...


def _nothing(done: int, total: int | None = None) -> None:
    return None


@contextmanager
def progress(run: CliState, label: str, total: int | None = None) -> Iterator[Update]:
    """A bar on stderr while the work runs, when stderr is a terminal; yields `update(done, total=None)`."""
    console = stderr(run)
    if not console.is_terminal:
        yield _nothing
        return
    from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeRemainingColumn

    with Progress(
        TextColumn(label), BarColumn(), MofNCompleteColumn(), TimeRemainingColumn(), console=console, transient=True
    ) as bar:
        task = bar.add_task(label, total=total)

        def update(done: int, total: int | None = None) -> None:
            bar.update(task, completed=done, total=total)  # a None total leaves it as it was

        yield update


@contextmanager
def terminal_status(console: Any, label: str) -> Iterator[Callable[[str], None] | None]:
    """A spinner with `label` on a terminal, yielding what updates its text; nothing (None) elsewhere."""
    if not console.is_terminal:
        yield None
        return
    with console.status(label) as status:
        yield lambda message: status.update(message)


def rows_out(rows: list[dict[str, Any]], as_json: bool, columns: list[str], title: str) -> None:
    """JSON lines when piped or with --json, a table on a terminal."""
    if as_json or not is_terminal():
        for row in rows:
            emit(row)
        return
    from rich.console import Console
    from rich.table import Table

    table = Table(title=title)
    for column in columns:
        table.add_column(column)
    for row in rows:
        table.add_row(*("" if row.get(c) is None else str(row.get(c)) for c in columns))
    Console(highlight=False).print(table)


def object_out(obj: dict[str, Any], as_json: bool) -> None:
    if as_json or not is_terminal():
        emit(obj)
        return
    from rich.console import Console

    console = Console(highlight=False)

    def show(value: Any, indent: str) -> None:
        for key, item in value.items():
            if isinstance(item, dict):
                console.print(f"{indent}{key}:")
                show(item, indent + "  ")
            else:
                console.print(f"{indent}{key}: {_plain(item)}", soft_wrap=True)

    show(obj, "")


def _plain(value: Any) -> str:
    """A value as a person reads it: yes/no, not Python's True/False."""
    if value is None:
        return ""
    if isinstance(value, bool):
        return "yes" if value else "no"
    return str(value)


def explain(run: CliState, answer: dict[str, Any], *, always: bool = False) -> None:
    """Which memory went into an answer and why, for people (stderr), from its JSON (`ask --json`'s object,
    the same whether the answer was made here or by `logo serve`)."""
    from rich.markup import escape

    flags = answer["flags"]
    kind = [name for name in ("cold_start", "biased", "off_profile") if flags.get(name)]
    if flags.get("conflicts"):
        kind.append(f"{len(flags['conflicts'])} conflict(s)")
    weights, signals = answer["weights"], answer["signals"]
    lines = [
        f"memory {answer['memory']}: local {weights['local']:.2f} / global {weights['global']:.2f}"
        f" · history {signals['history_size']} record{'' if signals['history_size'] == 1 else 's'}"
        f" · {' '.join(kind) or 'regular'}"
    ]
    for hit in answer["local"]:
        title = f"[{hit['item']}] " if hit.get("item") else ""
        lines.append(f"  local  {hit['score']:.2f}  {title}{hit['text'].replace(chr(10), ' ')[:90]}")
    for use in answer["global"]:
        lines.append(
            f"  global {use['score']:.2f}  cluster {use['cluster']} ({use['users']} users, via {use['source']}): "
            + ", ".join(use["keywords"][:5])
        )
    evidence = answer.get("evidence") or {}
    for item in evidence.get("items") or []:
        lines.append(f"  item   {item['similarity'] or 0:.2f}  {_item_knowledge(item)} (weight {item['weight']:.2f})")
    if answer.get("community"):
        c = answer["community"]
        lines.append(f"  community {c['id']} ({c['size']} users, via {c['source']})")
    for conflict in flags.get("conflicts") or []:
        mine = conflict.get("user_rating", conflict.get("user_label"))
        theirs = conflict.get("population_rating", conflict.get("population_label"))
        lines.append(f"  conflict on {conflict['topic']}: user {mine}, others {theirs}")
    if evidence:
        shown = ", ".join(f"{k.replace('_', ' ')} {v}" for k, v in evidence.items() if v is not None and k != "items")
        lines.append(f"  evidence: {shown}")
    note = f" ({answer['note']})" if answer.get("note") else ""
    lines.append(f"  answer type: {answer['answer_type']}{note}")
    if answer.get("rating"):
        r = answer["rating"]
        low, high, step = r["scale"]
        spread = ", ".join(f"{v}: {p:.2f}" for v, p in r["distribution"].items() if p >= 0.05)
        lines.append(
            f"  rating: {answer['answer_value']:g} on {low:g}-{high:g} by step {step:g}, head {r['head']}"
            f" (expected {r['expected']:.2f}, memory's estimate {r['estimate']}) · {spread}"
        )
    for option in answer.get("choices") or []:
        known = f" = {_item_knowledge(option['memory'])}" if option.get("memory") else " (not in memory)"
        lines.append(
            f"  option {option['probability']:.2f}  {option['option']}{known}; model {option['model_score']:.2f}"
        )
    for rec in answer.get("recommendations") or []:
        terms = " ".join(f"{k} {v:.2f}" for k, v in rec["terms"].items())
        lines.append(f"  item   {rec['score']:.2f}  {rec['item']} via {'+'.join(rec['sources']) or 'rank'} ({terms})")
    privacy = answer.get("privacy") or {}
    if privacy.get("exact"):
        lines.append("  privacy: exact population figures (--epsilon inf): they protect nobody")
    elif privacy:
        lines.append(f"  privacy: population figures carry differential privacy noise (epsilon {privacy['epsilon']:g})")
    t, tokens = answer["timings_ms"], answer["tokens"]
    phases = ", ".join(f"{k} {v:.0f} ms" for k, v in t.items() if k != "total")
    lines.append(
        f"  tokens: prompt {tokens['prompt']}, answer {tokens['completion']} · {t['total'] / 1000:.1f} s ({phases})"
    )
    console = stderr(run, always=always)  # asked for by name: shown even with --quiet
    for line in lines:
        console.print(f"[dim]{escape(line)}[/]", soft_wrap=True)


def _item_knowledge(item: dict[str, Any]) -> str:
    """What memory knows about the user and one item, in one line (`evidence.ItemEvidence`'s JSON)."""
    parts = []
    if item.get("rating_mean") is not None:
        parts.append(f"{item['ratings']} ratings, avg {item['rating_mean']:.2f}")
    for key, label in (("population", "population"), ("offset", "your offset"), ("neighbours", "neighbours")):
        if item.get(key) is not None:
            parts.append(f"{label} {item[key]:+.2f}" if key != "population" else f"{label} {item[key]:.2f}")
    if item.get("estimate") is not None:
        parts.append(f"estimate {item['estimate']:.2f}")
    if item.get("because"):
        parts.append(f"like {item['because']}")
    return f"{item['item']}: " + ", ".join(parts)


def print_clusters(rows: list[dict[str, Any]], memory: Any, *, detailed: bool) -> None:
    from rich.console import Console
    from rich.table import Table

    from ..views import sparkline

    console = Console(highlight=False)
    when = f" as of {format_when(memory.as_of_time)}" if memory.as_of_time is not None else ""
    if detailed:
        row = rows[0]
        console.print(f"[bold]cluster {row['id']}[/]{when}: {', '.join(row['keywords'])}")
        for key in ("size", "users", "rating_mean", "rating_count", "community", "private", "description"):
            console.print(f"  {key}: {row[key]}")
        console.print(f"  trend: {sparkline(row['trend'])} {row['trend_word']} {row['trend']}")
        console.print("  shared items: " + ", ".join(f"{i['item']} ({i['users']})" for i in row["top_items"]))
        if row["labels"]:
            console.print(f"  labels: {row['labels']}")
        return
    privacy = memory.privacy(brief=True)
    exact = bool(privacy.get("exact"))
    # the count of people is exact, and there is no released one to show instead: only exact views name it
    people = f", {len(memory.users)} users" if exact and memory.as_of_time is None else ""
    table = Table(title=f"global memory {memory.version}{when}: {memory.records} records{people}")
    for name in ("id", "users", "size", "keywords", "shared items", "rating", "trend", "community"):
        table.add_column(name, justify="right" if name in ("id", "users", "size", "rating") else "left")
    for row in rows:
        table.add_row(
            str(row["id"]) + (" 🔒" if row["private"] else ""),
            str(row["users"]),
            str(row["size"]),
            ", ".join(row["keywords"][:5]),
            ", ".join(i["item"] for i in row["top_items"][:3]),
            f"{row['rating_mean']:.2f}" if row["rating_mean"] is not None else "",
            f"{sparkline(row['trend'])} {row['trend_word']}",
            "" if row["community"] is None else str(row["community"]),
        )
    console.print(table)
    if exact:
        console.print("[yellow]Exact figures[/] (built with --epsilon inf): they protect nobody.")
    else:
        from ..global_memory.release import budget_text

        console.print(
            f"Figures carry differential privacy noise (epsilon {privacy['epsilon']:g} per record and build, "
            f"{budget_text(privacy['epsilon_spent'])} spent at most by one record); "
            "`logo global --ledger` shows the budget."
        )


def format_when(ts: float) -> str:
    from ..records import format_time

    return format_time(ts)


def print_profile(view: dict[str, Any], user: str) -> None:
    from rich.console import Console

    console = Console(highlight=False)
    kind = "cold-start" if view["cold_start"] else "biased" if view["biased"] else "regular"
    console.print(f"[bold]{user}[/]: {view['history']} records, diversity {view['diversity']:.2f} → {kind}")
    for d in view["dominant"]:
        console.print(f"  {d['share']:>5.0%}  cluster {d['cluster']}: {', '.join(d['keywords'])}")
    if view["community"]:
        c = view["community"]
        tops = "; ".join(", ".join(t["keywords"][:3]) for t in c["top_clusters"])  # none under privacy
        console.print(f"  community {c['id']} ({c['size']} users)" + (f": {tops}" if tops else ""))


def print_checks(checks: list[dict[str, Any]], as_json: bool) -> None:
    if as_json or not is_terminal():
        rows_out(checks, True, [], "")
        return
    readable = [
        {
            **c,
            "ok": "ok" if c["ok"] else "FAILED",
            "detail": ", ".join(f"{k} {v}" for k, v in c["detail"].items())
            if isinstance(c["detail"], dict)
            else c["detail"],
        }
        for c in checks
    ]
    rows_out(readable, False, ["check", "ok", "detail", "seconds"], "logo doctor")


def print_eval(report: EvalReport) -> None:
    from rich.console import Console
    from rich.table import Table

    head = f", rating head {report.rating_head}" if any(r.metric == "mae" for r in report.rows) else ""
    table = Table(title=f"logo eval: {report.items} questions, {report.model}{head}, {report.seconds:.0f} s")
    for name in ("bucket", "method", "n", "metric", "value", "rmse / recall", "evidence only / ndcg", "prompt tokens"):
        table.add_column(name, justify="left" if name in ("bucket", "method", "metric") else "right")
    for row in sorted(report.rows, key=lambda r: (r.metric, r.bucket, r.method)):
        extra = list((row.extra or {}).values())
        second = row.rmse if row.rmse is not None else extra[0] if extra else None
        third = row.evidence_mae if row.evidence_mae is not None else extra[1] if len(extra) > 1 else None
        table.add_row(
            row.bucket,
            row.method,
            str(row.n),
            row.metric,
            f"{row.value:.3f}",
            "" if second is None else f"{second:.3f}",
            "" if third is None else f"{third:.3f}",
            f"{row.prompt_tokens:.0f}",
        )
    console = Console(highlight=False)
    console.print(table)
    if report.checks:
        console.print("checks: " + ", ".join(f"{k.replace('_', ' ')} {v}" for k, v in report.checks.items()))
