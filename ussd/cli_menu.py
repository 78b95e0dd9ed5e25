"""``ussd menu``: tools for people who edit the menus (``check``, ``graph``).

Registered on the ``ussd`` group by :mod:`ussd.cli`. Both read a menus folder the way the
server does at start-up (:func:`ussd.menu_files.load_menu`, with the thresholds and cap of the
environment's settings), so ``check`` refuses exactly what ``ussd serve`` would refuse.
"""

from __future__ import annotations

from pathlib import Path

import click

from .errors import UssdError

DIRECTORY = click.argument("directory", required=False,
                           type=click.Path(exists=True, file_okay=False, path_type=Path))


@click.group()
def menu() -> None:
    """Check a menus folder, or draw it."""


@menu.command()
@DIRECTORY
def check(directory: Path | None) -> None:
    """Validate a menus folder (default: the one the server uses), as start-up does.

    Every problem is printed with its file and line; the exit status is 1 if there is any.
    """
    from .menu_files import load_menu
    from .rules import Language

    folder, settings = _folder(directory)
    try:
        loaded = load_menu(folder, settings.policy)
    except UssdError as error:
        head, *problems = str(error).split("\n")
        for problem in problems or [head]:
            click.echo(problem.strip())
        raise click.exceptions.Exit(1) from None
    languages = ", ".join(language.value for language in Language)
    click.echo(f"{folder}: {len(loaded.screens)} screens, every text in {languages}, every "
               "screen fits one USSD message: OK")


@menu.command()
@DIRECTORY
@click.option("--language", type=click.Choice(["fr", "en"]), default="fr", show_default=True,
              help="The language of the labels.")
def graph(directory: Path | None, language: str) -> None:
    """Print the menu as a Mermaid flowchart (paste it into a ```mermaid block)."""
    from .menu_files import load_menu
    from .menu_graph import mermaid
    from .rules import Language

    folder, settings = _folder(directory)
    try:
        loaded = load_menu(folder, settings.policy)
    except UssdError as error:
        raise click.ClickException(f"{error}\n(ussd menu check names every problem)") from None
    click.echo(mermaid(loaded, Language(language)), nl=False)


def _folder(directory: Path | None):
    """The folder to read and the environment's settings (its thresholds, its folder)."""
    from .settings import Settings

    try:
        settings = Settings.from_env()
    except UssdError as error:
        raise click.ClickException(str(error)) from None
    return (directory if directory is not None else settings.menus_dir), settings
