"""The menu as a Mermaid flowchart (``ussd menu graph``): every screen, every way between them.

For people who edit ``menus/``: paste the output into any Mermaid viewer (GitHub renders a
```` ```mermaid ```` block) to see the dialogue whole. Each screen is a node labelled with its
name and the first line of its text; an option is an arrow labelled with its number and label;
an action's outcomes are arrows labelled with the rules' reason (refusals dotted); the
screens that end the dialogue are rounded; the system screens, which the service shows on its
own (an outage, an unknown number...), stand apart. ``0``/``00``/``99`` are everywhere and
not drawn. Pure: it reads a parsed :class:`~ussd.menu.Menu`.
"""

from __future__ import annotations

import re

from .menu import Menu, Screen
from .rules import LANGUAGES_IN_ORDER, PROFILES_IN_ORDER, Language, Reason

LABEL_LENGTH = 40  # of a screen's first line in its node


def mermaid(menu: Menu, language: Language = Language.FR) -> str:
    """The flowchart of ``menu``, its labels in ``language``."""
    texts = menu.texts[language]
    system = set(menu.system.values())
    lines = ["flowchart TD"]
    for name, screen in menu.screens.items():
        if name not in system:
            lines.append(f"  {_node(name, screen, texts)}")
    lines.append("  subgraph system [shown by the service itself]")
    lines.extend(f"    {_node(name, menu.screens[name], texts)}"
                 for name in menu.screens if name in system)
    lines.append("  end")
    for name, screen in menu.screens.items():
        lines.extend(f"  {edge}" for edge in _edges(menu, name, screen, texts))
    return "\n".join(lines) + "\n"


def _edges(menu: Menu, name: str, screen: Screen, texts) -> list[str]:
    edges = []
    if screen.listing == "profiles":
        edges += _outcomes(name, screen, f"1-{len(PROFILES_IN_ORDER)} {screen.action}")
    elif screen.listing == "languages":
        edges.append(f'{_id(name)} -->|"1-{len(LANGUAGES_IN_ORDER)} {screen.action}"| '
                     f"{_id(screen.next)}")
    for number, option in enumerate(screen.options, start=1):
        label = f"{number}. {texts[option.label]}"
        if option.goto is not None:
            edges.append(f'{_id(name)} -->|"{_escape(label)}"| {_id(option.goto)}')
        elif option.action == "resume":
            edges.append(f'{_id(name)} -->|"{_escape(label)}"| dropped(["the screen the '
                         'dropped dialogue was on"])')
        elif option.action == "restart":
            edges.append(f'{_id(name)} -->|"{_escape(label)}"| {_id(menu.start)}')
        else:
            edges += _outcomes(name, screen, f"{number} {option.action}")
    return edges


def _outcomes(name: str, screen: Screen, how: str) -> list[str]:
    """One arrow per outcome of an action: approved solid, the refusals dotted."""
    return [f'{_id(name)} {"-->" if reason is Reason.APPROVED else "-.->"}|"{how}: '
            f'{reason.value}"| {_id(target)}' for reason, target in screen.outcomes.items()]


def _node(name: str, screen: Screen, texts) -> str:
    first = texts[screen.text].split("\n", 1)[0]
    if len(first) > LABEL_LENGTH:
        first = first[:LABEL_LENGTH - 1] + "…"
    label = f'"{name}<br/>{_escape(first)}"'
    return f"{_id(name)}([{label}])" if screen.end else f"{_id(name)}[{label}]"


def _id(name: str) -> str:
    """A node id Mermaid takes: word characters, never its keyword ``end``."""
    ident = re.sub(r"\W", "_", name)
    return f"{ident}_" if ident.lower() in ("end", "subgraph", "graph") else ident


def _escape(text: str) -> str:
    """Text inside a quoted Mermaid label: its entity codes for the characters it reads."""
    return (text.replace("#", "#35;").replace('"', "#quot;").replace("<", "#lt;")
            .replace(">", "#gt;").replace("|", "#124;"))
