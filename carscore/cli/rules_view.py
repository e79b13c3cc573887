"""Rule sets on the terminal: the list in use (with where each comes from)
and one rule set in full, parameters with their citations."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from rich import box
from rich.console import Console
from rich.table import Table
from rich.text import Text

from carscore.cli.console import literal, printable

if TYPE_CHECKING:
    from carscore.ruleset import RuleSet


def render_rules_list(rulesets: list[RuleSet], sources: dict[str, Any], console: Console) -> None:
    """The rule sets in use; ``sources`` (id -> assess.RuleSetSource) says which
    are built-in and which come from --rules, and what they change."""
    t = Table(box=box.SIMPLE_HEAVY)
    t.add_column("Id", overflow="fold")
    t.add_column("Version")
    t.add_column("Title", overflow="fold")
    t.add_column("Outputs", overflow="fold")
    t.add_column("Origin", overflow="fold")
    t.add_column("File", overflow="fold")
    for rs in rulesets:
        outs = ", ".join(rs.outputs + list(rs.flags) + list(rs.summary)[:3] + (["…"] if len(rs.summary) > 3 else []))
        src = sources.get(rs.id)
        t.add_row(
            literal(rs.id), literal(rs.version), literal(rs.title), literal(outs), _origin(src),
            literal(src.path if src else rs.file),
        )  # fmt: skip
    console.print(t)


def _origin(src: Any) -> Text:
    if src is None:
        return Text("–", style="dim")
    if src.builtin:
        text = Text("built-in")
    elif src.replaces_builtin:
        text = Text("--rules, replaces the built-in", style="yellow")
    else:
        text = Text("--rules, added", style="cyan")
    if src.changed_parameters:
        text.append(f"; changed: {printable(', '.join(src.changed_parameters))}", style="yellow")
    return text


def render_ruleset(rs: RuleSet, console: Console, source: Any = None) -> None:
    heading = literal(f"{rs.id} {rs.version}: {rs.title}", "bold")
    console.print(heading)
    if source is not None:
        console.print(Text.assemble(_origin(source), "  ", literal(source.path)))
    console.print(literal(rs.citation, keep_newlines=True))
    if rs.description:
        console.print(literal(rs.description, "italic", keep_newlines=True))
    p = Table(title="Parameters", title_justify="left", box=box.SIMPLE_HEAVY)
    for name in ("Name", "Value", "Unit", "Source"):
        p.add_column(name, overflow="fold")
    changed = source.changed_parameters if source is not None else {}
    for param in rs.parameters.values():
        value = literal(param.value)
        if param.name in changed:
            value.stylize("yellow")
            value.append(f" (built-in {printable(changed[param.name]['builtin_value'])})", style="dim")
        p.add_row(literal(param.name), value, literal(param.unit), literal(param.citation, keep_newlines=True))
    console.print(p)
    for d in rs.decisions:
        t = Table(title=literal(f"Decides {', '.join(d.outputs)} (first matching case)"), title_justify="left", box=box.SIMPLE)
        t.add_column("When", overflow="fold")
        t.add_column("Then", overflow="fold")
        t.add_column("Reason", overflow="fold")
        for case in d.cases:
            when = case.when.source.text if case.when else "otherwise"
            if case.worst:
                t.add_row(literal(when, keep_newlines=True), Text("worst of:"), Text(""))
                for crit in case.worst:
                    t.add_row(
                        literal("  " + crit.when.source.text, keep_newlines=True),
                        literal(crit.value),
                        literal(crit.reason.source.text if crit.reason else "", keep_newlines=True),
                    )
            else:
                then = ", ".join(f"{k}={v}" for k, v in case.then.items())
                t.add_row(
                    literal(when, keep_newlines=True),
                    literal(then),
                    literal(case.reason.source.text if case.reason else "", keep_newlines=True),
                )
        console.print(t)
    if rs.flags:
        f = Table(title="Flags", title_justify="left", box=box.SIMPLE)
        f.add_column("Id")
        f.add_column("When", overflow="fold")
        for flag in rs.flags.values():
            f.add_row(literal(flag.id), literal(flag.when.source.text, keep_newlines=True))
        console.print(f)
    if rs.summary:
        s = Table(title="Course summary", title_justify="left", box=box.SIMPLE)
        s.add_column("Key")
        s.add_column("Value", overflow="fold")
        for key, item in rs.summary.items():
            s.add_row(literal(key), literal(item.value.source.text if item.value else "cases (see file)", keep_newlines=True))
        console.print(s)
