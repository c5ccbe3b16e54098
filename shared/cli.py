"""The ``tasklinkr`` command: run one service, run the whole stack, manage the messaging topology."""

# Services run on eventlet: patch before kombu, pymongo or socket are imported anywhere.
import warnings

# eventlet warns on import that it is in maintenance mode; nameko 2.x is built on it (see docs/architecture.md).
warnings.filterwarnings("ignore", message=".*Eventlet is deprecated.*")

import eventlet  # noqa: E402

eventlet.monkey_patch()

import json  # noqa: E402

import typer  # noqa: E402

from shared import config as settings  # noqa: E402

app = typer.Typer(help="TaskLINKr platform commands.", no_args_is_help=True, add_completion=False)
topology_app = typer.Typer(help="The RabbitMQ topology (exchanges, queues, bindings).", no_args_is_help=True)
app.add_typer(topology_app, name="topology")


@app.command()
def run(service: str = typer.Argument(..., help=f"One of: {', '.join(settings.SERVICES)}")) -> None:
    """Run one service in the foreground (what docker compose and `tasklinkr up` start per service)."""
    from shared.runner import run as run_service

    run_service(service)


@app.command()
def up() -> None:
    """Start the whole platform as local processes; Ctrl-C stops everything."""
    from shared.stack import Stack

    raise typer.Exit(Stack.from_settings().run_forever())


@topology_app.command("apply")
def topology_apply() -> None:
    """Declare every exchange, queue and binding in contracts-schema/catalog.json (idempotent)."""
    from shared import topology

    declared = topology.apply(settings.get("amqp_uri"))
    typer.echo(json.dumps(declared, indent=2))


if __name__ == "__main__":
    app()
