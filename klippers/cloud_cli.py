"""``klip cloud``: the same jobs on AWS Step Functions + ECS Fargate."""

from __future__ import annotations

import click


@click.group()
def cloud() -> None:
    """Run the same jobs on AWS Step Functions + ECS Fargate."""


@cloud.command()
def definition() -> None:
    """Print the state machine definition (ASL JSON) with placeholder ARNs."""
    from klippers.statemachine import definition_json

    click.echo(definition_json(), nl=False)
