"""What the ``hepnn`` command and its sub-apps (``datasets``, ``pretrained``) share: the ``--debug``
switch and the one-line error every command ends with."""

from __future__ import annotations

import typer

STATE = {"debug": False}  # set by the top-level callback from --debug


def fail(err: Exception) -> None:
    """``error: MESSAGE`` on stderr and exit code 2; with ``--debug`` the exception itself."""
    if STATE["debug"]:
        raise err
    typer.secho(f"error: {err}", fg=typer.colors.RED, err=True)
    raise typer.Exit(code=2)
