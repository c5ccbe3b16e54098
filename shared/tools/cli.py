"""The ``tasklinkr`` command: run one service, run the whole stack, manage the messaging topology."""

# Services run on eventlet: patch before kombu, pymongo or socket are imported anywhere.
import warnings

# eventlet warns on import that it is in maintenance mode; nameko 2.x is built on it (see docs/architecture.md).
warnings.filterwarnings("ignore", message=r"\s*Eventlet is deprecated")

import eventlet  # noqa: E402

eventlet.monkey_patch()

import json  # noqa: E402
from pathlib import Path  # noqa: E402

import typer  # noqa: E402

from shared.runtime import config as settings  # noqa: E402
from shared.vocabulary.terms import LANES  # noqa: E402

app = typer.Typer(help="TaskLINKr platform commands.", no_args_is_help=True, add_completion=False)
topology_app = typer.Typer(help="The RabbitMQ topology (exchanges, queues, bindings).", no_args_is_help=True)
app.add_typer(topology_app, name="topology")
dlq_app = typer.Typer(help="Dead-lettered messages: list, show, replay, purge.", no_args_is_help=True)
app.add_typer(dlq_app, name="dlq")
access_app = typer.Typer(help="Tenants' and providers' own broker users (feed and inbound commands).",
                         no_args_is_help=True)
app.add_typer(access_app, name="tenant-access")


@app.callback()
def _configure() -> None:
    settings.apply_tls_settings()


@app.command()
def run(
    service: str = typer.Argument(..., help=f"One of: {', '.join(settings.SERVICES)}"),
    lane: list[str] = typer.Option(None, "--lane", help="Consume only this workload lane's queues (its events, "
                                   "commands and RPC requests; enterprise, smb; repeat for several); default: every "
                                   "lane."),
) -> None:
    """Run one service in the foreground (what docker compose and `tasklinkr up` start per service)."""
    from shared.tools.runner import run as run_service
    from shared.vocabulary.terms import known_lanes

    try:
        known_lanes(lane)
    except ValueError as exc:
        raise typer.BadParameter(str(exc), param_hint="--lane") from exc
    run_service(service, lane)


@app.command()
def up() -> None:
    """Start the whole platform as local processes; Ctrl-C stops everything."""
    from shared.tools.stack import Stack

    raise typer.Exit(Stack.from_settings().run_forever())


@app.command()
def demo(
    url: str = typer.Option(None, help="The gateway's base URL; default http://<TASKLINKR_GATEWAY_ADDRESS>."),
    output_dir: Path = typer.Option(None, help="Where each run's PDF and demo.json go; default <data_dir>/demo."),
) -> None:
    """Create a small world on the running platform and walk it from a posting to a paid invoice (public API)."""
    from shared.tools.demo import command

    try:
        command.run(url, output_dir)
    except (command.NoPlatform, command.DemoError) as exc:
        typer.echo(f"tasklinkr demo: {exc}", err=True)
        raise typer.Exit(1) from exc


@topology_app.command("apply")
def topology_apply(
    wait: float = typer.Option(0, "--wait", help="Keep trying this many seconds while the broker is unreachable."),
) -> None:
    """Declare every exchange, queue and binding in contracts-schema/catalog.json (idempotent)."""
    from shared.runtime import topology

    declared = topology.apply_when_reachable(settings.get("amqp_uri"), wait)
    typer.echo(json.dumps(declared, indent=2))


@topology_app.command("check")
def topology_check(
    wait: float = typer.Option(0, "--wait", help="Keep checking for up to this many seconds (broker starting, "
                               "topology job still running)."),
) -> None:
    """Exit 0 once every exchange and queue of the catalog exists on the broker (declares nothing); else list the
    missing ones and exit 1. Kubernetes pods wait on it for the topology job."""
    import time

    from shared.runtime import topology

    deadline = time.monotonic() + wait
    while True:
        try:
            absent = topology.missing(settings.get("amqp_uri"))
        except Exception as exc:  # noqa: BLE001 - an unreachable broker is one more reason to wait
            absent = [f"broker not reachable: {exc}"]
        if not absent or time.monotonic() >= deadline:
            break
        time.sleep(2)
    if absent:
        typer.echo("\n".join(["missing:", *absent]), err=True)
        raise typer.Exit(1)
    typer.echo("topology complete")


@app.command()
def probe(service: str = typer.Argument(..., help=f"One of: {', '.join(settings.SERVICES)}")) -> None:
    """Check this service process (its metrics endpoint; the gateway's HTTP server) and its broker and database
    connections with the service's own settings: compose's health check, Kubernetes' readiness probe. Prints JSON;
    exit 1 when one fails."""
    from shared.tools.probe import healthy
    from shared.tools.probe import probe as check

    if service not in settings.SERVICES:
        raise typer.BadParameter(f"unknown service {service!r}; choose one of {', '.join(settings.SERVICES)}")
    report = check(service)
    typer.echo(json.dumps(report))
    if not healthy(report):
        raise typer.Exit(1)


def _services_or_all(service: str | None) -> list[str]:
    from shared.tools.operations import consumer_services

    known = consumer_services()
    if service is None:
        return known
    if service not in known:
        raise typer.BadParameter(f"{service!r} has no dead-letter queue; choose one of {', '.join(known)}")
    return [service]


@dlq_app.command("list")
def dlq_list(service: str = typer.Argument(None, help="A consuming service; all when omitted.")) -> None:
    """List parked messages with their errors (they stay parked)."""
    from rich.console import Console
    from rich.table import Table

    from shared.tools.operations import DeadLetters

    table = Table("service", "#", "event id", "type", "consumer", "attempts", "parked at", "error")
    count = 0
    for name in _services_or_all(service):
        for letter in DeadLetters(settings.get("amqp_uri"), name).list():
            count += 1
            table.add_row(name, str(letter.position), letter.event_id or "?", letter.event_type or "?",
                          letter.consumer, str(letter.attempts), letter.parked_at, letter.summary)
    Console().print(table if count else "no dead-lettered messages")


@dlq_app.command("show")
def dlq_show(service: str, event_id: str) -> None:
    """Show one parked message: its headers, full error and body."""
    from shared.tools.operations import DeadLetters

    for letter in DeadLetters(settings.get("amqp_uri"), _services_or_all(service)[0]).list():
        if letter.event_id == event_id:
            typer.echo(json.dumps({k: str(v) for k, v in letter.headers.items()}, indent=2))
            typer.echo(letter.pretty_body())
            return
    typer.echo(f"no parked message {event_id} in dlq.{service}", err=True)
    raise typer.Exit(1)


@dlq_app.command("replay")
def dlq_replay(
    service: str,
    event_id: str = typer.Option(None, "--event-id", help="Replay this message only."),
    all_messages: bool = typer.Option(False, "--all", help="Replay every parked message of the service."),
) -> None:
    """Send parked messages back to their consumer's queue (after a fix), attempts reset."""
    from shared.tools.operations import DeadLetters

    if bool(event_id) == all_messages:
        raise typer.BadParameter("give either --event-id ID or --all")
    replayed = DeadLetters(settings.get("amqp_uri"), _services_or_all(service)[0]).replay(event_id)
    typer.echo(f"replayed {len(replayed)} message(s)")
    if event_id and not replayed:
        raise typer.Exit(1)


@dlq_app.command("purge")
def dlq_purge(service: str, yes: bool = typer.Option(False, "--yes", help="Do not ask.")) -> None:
    """Delete every parked message of a service (asks first)."""
    from shared.tools.operations import DeadLetters

    name = _services_or_all(service)[0]
    letters = DeadLetters(settings.get("amqp_uri"), name)
    if not yes and not typer.confirm(f"delete {len(letters.list())} parked message(s) of {name} for good?"):
        raise typer.Exit(1)
    typer.echo(f"purged {letters.purge()} message(s)")


def _with_broker_admin(action):
    from shared.tools.brokeradmin import BrokerAdmin, BrokerAdminError

    admin = BrokerAdmin(settings.get("rabbitmq_management_url"), settings.get("amqp_uri"),
                        tenant_broker_url=settings.get("tenant_broker_url"))
    try:
        return action(admin)
    except BrokerAdminError as exc:
        typer.echo(str(exc), err=True)
        raise typer.Exit(1) from exc


@access_app.command("grant")
def access_grant(tenant_id: str) -> None:
    """Create the broker user of a tenant (ten_…) or provider (prv_…) the platform knows, or give it a new
    password; print once, as JSON, everything its system needs to connect (host, port, TLS, vhost, user, password,
    exchanges, routing-key prefix)."""
    from shared.tools.brokeradmin import platform_knows

    known = platform_knows(settings.get("amqp_uri"))
    credentials = _with_broker_admin(lambda admin: admin.grant(tenant_id, known=known))
    typer.echo(json.dumps(credentials.as_dict(), indent=2))


@access_app.command("revoke")
def access_revoke(tenant_id: str) -> None:
    """Delete the broker user of a tenant or provider, close its connections and delete the queues, exchanges and
    bindings it declared, at once."""
    typer.echo(json.dumps(_with_broker_admin(lambda admin: admin.revoke(tenant_id))))


@access_app.command("sweep")
def access_sweep() -> None:
    """One pass of the tenant sweep the gateway runs every TASKLINKR_TENANT_SWEEP_INTERVAL_SECONDS: delete what
    tenants' and providers' users declared beyond their rights (docs/integration.md), each removal on the gateway's
    audit trail; print the removals as JSON."""
    from datetime import UTC, datetime

    from shared.tools.backup import client_for
    from shared.tools.brokeradmin import BrokerAdminError
    from shared.tools.tenantsweep import SEEN, TenantSweep, removal_record

    def sweep(admin) -> list:
        admin.listing("vhosts")  # unreachable or refused: say so and stop, rather than sweep nothing quietly
        with client_for("gateway") as client:
            database = client[settings.get("mongo_database", "gateway")]
            passed = TenantSweep(admin, settings.get("tenant_max_queues"))
            removals = passed.run(database[SEEN], lambda removal: database["audit"].insert_one(
                removal_record(removal, datetime.now(UTC))))
        if passed.unreachable:
            raise BrokerAdminError(f"the management API stopped answering after {len(removals)} removal(s); "
                                   "run the sweep again")
        return removals

    removals = _with_broker_admin(sweep)
    typer.echo(json.dumps([{"kind": r.kind, "name": r.name, "owner": r.owner, "reason": r.reason}
                           for r in removals], indent=2))


@app.command()
def status() -> None:
    """The outbox relay of each service and lane (its backlog, who holds it, how far it got), the messages waiting
    per workload lane, and the depth of every queue."""
    from rich.console import Console
    from rich.table import Table

    from shared.tools.operations import outbox_relays, queue_depths, queue_lane
    from shared.tools.runner import runnable_services
    from shared.vocabulary.times import utc_now

    console = Console()
    backlog = Table("service", "lane", "outbox backlog (unpublished events)", "relay held by", "published up to")
    for name in settings.databases():  # a service's database, or each of its cells' (matching-enterprise, …)
        if settings.service_of(name) in runnable_services():
            relays = outbox_relays(name)
            if relays is None:
                backlog.add_row(name, "-", "database not configured or not answering", "", "")
            for relay in relays or []:
                reached = relay["position_time"]
                backlog.add_row(name, relay["lane"], str(relay["backlog"]), relay["holder"] or "nobody",
                                "never" if reached is None else
                                f"{reached:%H:%M:%S} ({(utc_now() - reached).total_seconds():.0f} s ago)")
    console.print(backlog)
    depths = Table("queue", "lane", "messages", "consumers")
    lanes: dict[str, list[int]] = {}
    for name, messages, consumers in queue_depths(settings.get("amqp_uri")):
        lane = queue_lane(name) or "-"
        depths.add_row(name, lane, "missing" if messages < 0 else str(messages), str(consumers))
        if lane != "-" and messages >= 0:
            total = lanes.setdefault(lane, [0, 0])
            total[0] += messages
            total[1] += consumers
    per_lane = Table("lane", "messages waiting", "consumers")
    for lane, (messages, consumers) in lanes.items():
        per_lane.add_row(lane, str(messages), str(consumers))
    console.print(per_lane)
    console.print(depths)


@app.command()
def backup(
    services: list[str] = typer.Argument(
        None, help="Services (or cells, matching-enterprise) whose database to back up; all when omitted."),
    out: Path = typer.Option(..., "--out", help="New folder; one sub-folder per database is written into it."),
) -> None:
    """Copy each service's database to files (one snapshot per service, or per cell of a service deployed in cells;
    see deploy/README.md, Backups)."""
    from shared.tools import backup as backups

    for name in services or settings.databases():
        with backups.client_for(name) as client:
            manifest = backups.backup(client, name, out)
        counts = ", ".join(f"{c} {v['documents']}" for c, v in manifest["collections"].items())
        typer.echo(f"{name}: {manifest['database']} -> {out / name} ({counts or 'empty'})")


CELLS = ", ".join(f"{service}-{lane}" for service in settings.CELL_SERVICES for lane in LANES)


@app.command()
def restore(
    service: str = typer.Argument(..., help=f"One of: {', '.join(settings.DATA_SERVICES)}, or a cell ({CELLS})"),
    source: Path = typer.Option(..., "--from", help="The backup folder (the one holding <service>/)."),
    replace: bool = typer.Option(False, "--replace", help="Drop the database's current data first."),
) -> None:
    """Restore one service's database from a backup (checked whole before anything is written)."""
    from shared.tools import backup as backups

    try:
        with backups.client_for(service) as client:
            restored = backups.restore(client, service, source / service, replace=replace)
    except backups.BackupError as exc:
        typer.echo(str(exc), err=True)
        raise typer.Exit(1) from exc
    typer.echo(f"{service}: restored {sum(restored.documents.values())} documents into {restored.database}")


@app.command()
def split(
    service: str = typer.Argument(..., help=f"A service deployed in cells: {', '.join(settings.CELL_SERVICES)}"),
    source: Path = typer.Option(..., "--from", help="The backup folder holding <service>/, taken before the cells."),
    replace: bool = typer.Option(False, "--replace", help="Drop what the cells' databases hold first."),
) -> None:
    """Restore a backup of one service's database from before its cells into each cell, each cell with its part:
    its lane's documents, what belongs to them, and what every lane reads (docs/operations.md, Cells). Every part is
    worked out, and every cell checked, before anything is written."""
    from shared.tools import backup as backups

    try:
        restored = backups.split(service, source / service, replace=replace)
    except backups.BackupError as exc:
        typer.echo(str(exc), err=True)
        raise typer.Exit(1) from exc
    for cell in restored:
        counts = ", ".join(f"{name} {count}" for name, count in cell.documents.items() if count)
        typer.echo(f"{cell.service}: restored {sum(cell.documents.values())} documents into {cell.database} "
                   f"({counts or 'empty'})")


if __name__ == "__main__":
    app()
