"""Get back into an EC2 instance whose SSH key or Windows password is lost: start a reset and
follow it, fetch the new key, see past and running resets, arm an alarm. It talks to the
deployed ResetAccess stack (found by its outputs) with your AWS credentials; the options below
go before or after the command, as with the AWS CLI."""

from __future__ import annotations

import sys
from dataclasses import dataclass
from enum import StrEnum
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any

import typer
from typer._click.exceptions import ClickException

from cli.aws import Aws, aws_errors
from cli.errors import EXIT_CODES, OK, REFUSED, CliError, Interrupted, Refused, ResetFailed
from lambdas.names import STACK_NAME

if TYPE_CHECKING:
    from rich.console import Console


class Output(StrEnum):
    text = "text"
    json = "json"


@dataclass
class Settings:
    aws: Aws
    output: Output

    @property
    def json(self) -> bool:
        return self.output is Output.json

    def out(self) -> Console:
        """Results: stdout (pure JSON with --output json)."""
        from rich.console import Console

        return Console(highlight=False, soft_wrap=True)

    def progress(self) -> Console:
        """Progress lines and spinner: stderr with --output json, so stdout stays JSON."""
        from rich.console import Console

        return Console(stderr=self.json, highlight=False, soft_wrap=True)


app = typer.Typer(
    name="reset-access",
    help=f"{__doc__}\n\n{EXIT_CODES}",
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
    # Plain help: rich-rendered help doubled `reset-access --help` (python -m cli.coldstart).
    rich_markup_mode=None,
    context_settings={"help_option_names": ["-h", "--help"]},
)

# Options that go before or after the subcommand, as with the AWS CLI: each takes a value.
GLOBAL_OPTIONS = ("--region", "--profile", "--endpoint-url", "--stack", "--output")


@app.callback()
def root(
    ctx: typer.Context,
    region: Annotated[
        str | None,
        typer.Option(help="AWS Region (default: AWS_REGION or your profile's)", show_default=False),
    ] = None,
    profile: Annotated[
        str | None,
        typer.Option(help="AWS profile from your AWS config (default: AWS_PROFILE)"),
    ] = None,
    endpoint_url: Annotated[
        str | None,
        typer.Option(
            envvar="AWS_ENDPOINT_URL",
            help="call this endpoint instead of AWS's, e.g. `python -m local serve`'s",
        ),
    ] = None,
    stack: Annotated[str, typer.Option(help="name of the deployed ResetAccess stack")] = STACK_NAME,
    output: Annotated[
        Output, typer.Option(help="text for people, json for scripts (pure JSON on stdout)")
    ] = Output.text,
) -> None:
    ctx.obj = Settings(
        Aws(region=region, profile=profile, endpoint_url=endpoint_url, stack=stack), output
    )


def _settings(ctx: typer.Context) -> Settings:
    settings = ctx.obj
    assert isinstance(settings, Settings)  # noqa: S101 - set by root() for every subcommand
    return settings


InstanceId = Annotated[
    str, typer.Argument(metavar="INSTANCE_ID", help="the instance, e.g. i-0123456789abcdef0")
]
Poll = Annotated[
    float, typer.Option(min=0.2, help="seconds between two reads of the execution's history")
]


@app.command()
def start(
    ctx: typer.Context,
    instance_id: Annotated[
        str | None,
        typer.Argument(
            metavar="[INSTANCE_ID]",
            help="the instance, e.g. i-0123456789abcdef0 (or --targets for a fleet)",
            show_default=False,
        ),
    ] = None,
    targets: Annotated[
        list[str] | None,
        typer.Option(
            "--targets",
            help="a fleet: tag:KEY=VALUE[,VALUE] or InstanceIds=ID[,ID] (repeat to AND tags)",
            show_default=False,
        ),
    ] = None,
    accounts: Annotated[
        str | None,
        typer.Option(help="fleet: accounts to reset in, comma-separated (member stacks there)"),
    ] = None,
    regions: Annotated[
        str | None,
        typer.Option(help="fleet: Regions of --accounts, comma-separated (default: --region)"),
    ] = None,
    max_concurrency: Annotated[
        str | None, typer.Option(help="fleet: resets at once, a number or percentage (10)")
    ] = None,
    max_errors: Annotated[
        str | None,
        typer.Option(help="fleet: failures before no new reset starts, number or % (0)"),
    ] = None,
    subnet: Annotated[
        str | None,
        typer.Option(help="CreateNewVPC (default), SelectedInstanceSubnet or a subnet ID"),
    ] = None,
    helper_type: Annotated[
        str | None, typer.Option(help="helper instance type (default t3.small; Nitro only)")
    ] = None,
    mode: Annotated[
        str | None,
        typer.Option(help="auto (default), online or offline; checked as the workflow does"),
    ] = None,
    public_key_file: Annotated[
        Path | None,
        typer.Option(help="add this OpenSSH public key (.pub) instead of making a new key"),
    ] = None,
    key_type: Annotated[
        str | None, typer.Option(help="rsa (default) or ed25519, for the new key")
    ] = None,
    backup: Annotated[
        str | None, typer.Option(help="ami (default), snapshot or none, before any change")
    ] = None,
    no_password_ami: Annotated[
        bool,
        typer.Option("--no-password-ami", help="Windows: no password-enabled AMI after the reset"),
    ] = False,
    dry_run: Annotated[
        bool, typer.Option("--dry-run", help="run every check, change nothing, print the plan")
    ] = False,
    name: Annotated[
        str | None,
        typer.Option(help="execution name (1-80 characters); default: Step Functions picks one"),
    ] = None,
    no_follow: Annotated[
        bool, typer.Option("--no-follow", help="start and print the execution ARN; do not wait")
    ] = False,
    poll_seconds: Poll = 2.0,
) -> int:
    """Start a reset of INSTANCE_ID, or of a fleet (--targets), and follow it to the end
    (Ctrl-C stops following only)."""
    from cli import actions

    settings = _settings(ctx)
    per_instance: dict[str, Any] = {
        key: value
        for key, value in (
            ("SubnetId", subnet),
            ("HelperInstanceType", helper_type),
            ("Mode", mode),
            ("KeyType", key_type),
            ("Backup", backup),
        )
        if value is not None
    }
    if public_key_file is not None:
        per_instance["PublicKey"] = actions.read_public_key(public_key_file)
    if no_password_ami:
        per_instance["CreatePasswordEnabledAmi"] = False
    if dry_run:
        per_instance["DryRun"] = True
    actions.checked_name(name)
    if targets:
        if instance_id is not None:
            raise Refused("give INSTANCE_ID or --targets, not both")
        rates = {"MaxConcurrency": max_concurrency, "MaxErrors": max_errors}
        where = (_listed(accounts), _listed(regions))
        return _start_fleet(
            settings, targets, where, rates, per_instance, name, no_follow, poll_seconds
        )
    if instance_id is None:
        raise Refused("give INSTANCE_ID, or --targets for a fleet (see reset-access start --help)")
    if any(v is not None for v in (accounts, regions, max_concurrency, max_errors)):
        raise Refused("--accounts, --regions, --max-concurrency and --max-errors need --targets")
    execution_input = {"InstanceId": instance_id, **per_instance}
    actions.checked_input(execution_input)
    aws = settings.aws
    with aws_errors(aws.endpoint_url):
        try:
            arn = actions.start(aws, execution_input, name)
        except KeyboardInterrupt:
            raise Interrupted(
                f"interrupted while starting; `reset-access status {instance_id}` shows whether "
                "the reset started"
            ) from None
    if no_follow:
        return _started(settings, arn)
    return _follow(settings, arn, poll_seconds)


def _listed(text: str | None) -> list[str]:
    return [part.strip() for part in (text or "").split(",") if part.strip()]


def _started(settings: Settings, arn: str) -> int:
    if settings.json:
        from cli.report import print_json

        print_json(settings.out(), {"ExecutionArn": arn})
    else:
        settings.out().print(
            f"started {arn}\nfollow it with: reset-access follow {arn}", markup=False
        )
    return OK


def _start_fleet(
    settings: Settings,
    targets: list[str],
    where: tuple[list[str], list[str]],
    rates: dict[str, str | None],
    per_instance: dict[str, Any],
    name: str | None,
    no_follow: bool,
    poll_seconds: float,
) -> int:
    from cli import fleet

    aws = settings.aws
    accounts, regions = where
    if accounts and not regions:
        regions = [aws.region_name]  # the command's own Region, as SSM's default
    fleet_input = fleet.fleet_input(targets, (accounts, regions), rates, per_instance)
    with aws_errors(aws.endpoint_url):
        try:
            arn = fleet.start(aws, fleet_input, name)
        except KeyboardInterrupt:
            raise Interrupted(
                "interrupted while starting; `aws stepfunctions list-executions "
                f"--state-machine-arn {aws.output(fleet.FLEET_OUTPUT)}` shows whether it started"
            ) from None
    if no_follow:
        return _started(settings, arn)
    return _follow_fleet(settings, arn, poll_seconds)


@app.command()
def follow(
    ctx: typer.Context,
    execution_arn: Annotated[
        str, typer.Argument(metavar="EXECUTION_ARN", help="the execution ARN `start` printed")
    ],
    poll_seconds: Poll = 2.0,
) -> int:
    """Follow a running reset or fleet to its end and print its result."""
    from cli import fleet

    settings = _settings(ctx)
    if fleet.is_fleet(settings.aws, execution_arn):
        return _follow_fleet(settings, execution_arn, poll_seconds)
    return _follow(settings, execution_arn, poll_seconds)


def _follow_fleet(settings: Settings, arn: str, poll_seconds: float) -> int:
    """The fleet's live table, then its summary: 0 all succeeded, 1 some failed, 2 refused."""
    from cli import fleet
    from cli.report import print_json

    progress_console = settings.progress()
    try:
        progress_console.print(f"fleet execution {arn}", highlight=False, markup=False)
        with aws_errors(settings.aws.endpoint_url):
            described, progress = fleet.follow(
                settings.aws.stepfunctions(), arn, progress_console, poll_seconds
            )
            summary, lines = fleet.result_lines(settings.aws, described)
    except KeyboardInterrupt:
        raise fleet.interrupted(arn) from None
    record = fleet.record(described, summary, lines)
    if settings.json:
        print_json(settings.out(), record)
    else:
        fleet.print_summary(settings.out(), record)
    if described["status"] == "SUCCEEDED":
        return OK
    if fleet.REFUSED_STATE in progress.entered:
        raise Refused(f"fleet refused, no reset started: {fleet.cause_of(described)}")
    raise ResetFailed(
        f"the fleet did not succeed ({described.get('error') or described['status']}); "
        "each failed reset rolled its instance back; its outcome says why"
    )


def _follow(settings: Settings, arn: str, poll_seconds: float) -> int:
    from cli import follow as following
    from cli import report

    progress_console = settings.progress()
    try:
        progress_console.print(f"execution {arn}", highlight=False, markup=False)
        if not settings.aws.endpoint_url:
            progress_console.print(f"console   {following.console_link(arn)}", markup=False)
        # A Ctrl-C while the client is made (boto3's import) leaves the reset running too.
        with aws_errors(settings.aws.endpoint_url):
            described, progress = following.follow(
                settings.aws.stepfunctions(), arn, progress_console, poll_seconds
            )
    except KeyboardInterrupt:
        raise following.interrupted(arn) from None
    record = report.execution_record(described, progress.downtime(), progress.seconds)
    if settings.json:
        report.print_json(settings.out(), record)
    else:
        report.print_execution(settings.out(), record)
    if described["status"] == "SUCCEEDED":
        return OK
    if "Refused" in progress.entered:
        return REFUSED
    raise ResetFailed(
        f"the reset did not succeed ({described['status']}); "
        f"see what was put back with: reset-access status {_instance_of(described)}"
    )


def _instance_of(described: dict[str, Any]) -> str:
    import json

    try:
        started_with = json.loads(described.get("input") or "{}")
    except ValueError:
        started_with = {}
    instance = started_with.get("InstanceId") if isinstance(started_with, dict) else None
    return str(instance) if instance else "INSTANCE_ID"


@app.command("get-key")
def get_key(
    ctx: typer.Context,
    instance_id: InstanceId,
    out: Annotated[
        str,
        typer.Option(
            help="file to create (mode 600), or - for stdout when it is piped or redirected"
        ),
    ],
    force: Annotated[bool, typer.Option("--force", help="overwrite --out if it exists")] = False,
) -> int:
    """Write the new private key (from Parameter Store) to a file; it is never printed."""
    from cli import actions

    settings = _settings(ctx)
    instance_id = actions.checked_instance_id(instance_id)
    with aws_errors(settings.aws.endpoint_url):
        where = actions.get_key(settings.aws, instance_id, out, force)
    if where != "stdout":
        typer.echo(f"wrote {where} (mode 600)", err=True)
    return OK


@app.command()
def history(ctx: typer.Context, instance_id: InstanceId) -> int:
    """Past resets of INSTANCE_ID, newest first, whoever started them (alarm runs included)."""
    from cli import actions, report

    settings = _settings(ctx)
    instance_id = actions.checked_instance_id(instance_id)
    with aws_errors(settings.aws.endpoint_url):
        results = actions.history(settings.aws, instance_id)
    if settings.json:
        report.print_json(settings.out(), results)
        return OK
    console = settings.out()
    if not results:
        console.print(f"no finished reset recorded for {instance_id}", markup=False)
    for result in results:
        when = report.iso(result.get("FinishedAt")) or report.iso(result.get("RecordedAt"))
        what = result.get("Error") if result.get("Outcome") == "failed" else result.get("Mode")
        console.print(
            f"{when}  {result.get('Outcome', '?'):<9} {what or '':<12} "
            f"{result.get('ExecutionArn', '')}",
            markup=False,
        )
    return OK


@app.command()
def status(ctx: typer.Context, instance_id: InstanceId) -> int:
    """A reset of INSTANCE_ID in progress (it holds the lock), or the last one's result."""
    from cli import actions, report

    settings = _settings(ctx)
    instance_id = actions.checked_instance_id(instance_id)
    with aws_errors(settings.aws.endpoint_url):
        now = actions.running(settings.aws, instance_id)
        last = None if now else actions.last_result(settings.aws, instance_id)
    if settings.json:
        report.print_json(settings.out(), {"Running": now, "LastResult": last})
        return OK
    console = settings.out()
    if now:
        console.print(
            f"a reset of {instance_id} is running since {report.iso(now['StartedAt'])}: "
            f"{now['ExecutionArn']}\nfollow it with: reset-access follow {now['ExecutionArn']}",
            markup=False,
        )
    elif last:
        report.print_result(console, last, None)
    else:
        console.print(f"no reset of {instance_id} is running or recorded", markup=False)
    return OK


@app.command("arm-alarm")
def arm_alarm(ctx: typer.Context, instance_id: InstanceId) -> int:
    """Reset INSTANCE_ID by itself when its status check fails: opt-in tag, then the alarm."""
    from cli import actions

    settings = _settings(ctx)
    instance_id = actions.checked_instance_id(instance_id)
    with aws_errors(settings.aws.endpoint_url):
        name = actions.arm_alarm(settings.aws, instance_id)
    settings.out().print(f"alarm {name} armed; {instance_id} tagged {_tag()}=true", markup=False)
    return OK


@app.command("disarm-alarm")
def disarm_alarm(ctx: typer.Context, instance_id: InstanceId) -> int:
    """Stop automatic resets of INSTANCE_ID: delete its alarm, then the opt-in tag."""
    from cli import actions

    settings = _settings(ctx)
    instance_id = actions.checked_instance_id(instance_id)
    with aws_errors(settings.aws.endpoint_url):
        name = actions.disarm_alarm(settings.aws, instance_id)
    settings.out().print(f"alarm {name} deleted; tag {_tag()} removed", markup=False)
    return OK


def _tag() -> str:
    from lambdas.names import OPT_IN_TAG

    return OPT_IN_TAG


def hoisted(argv: list[str]) -> list[str]:
    """The global options moved in front of the subcommand, where click reads them."""
    front: list[str] = []
    rest: list[str] = []
    index = 0
    while index < len(argv):
        arg = argv[index]
        if arg == "--":
            rest += argv[index:]
            break
        if arg in GLOBAL_OPTIONS and index + 1 < len(argv):
            front += argv[index : index + 2]
            index += 2
            continue
        if arg.split("=", 1)[0] in GLOBAL_OPTIONS and "=" in arg:
            front.append(arg)
        else:
            rest.append(arg)
        index += 1
    return front + rest


def main(argv: list[str] | None = None) -> int:
    """The console script: every failure a user can cause ends in one line and an exit code."""
    args = hoisted(sys.argv[1:] if argv is None else list(argv))
    command = typer.main.get_command(app)
    try:
        result = command.main(args=args, prog_name="reset-access", standalone_mode=False)
    except typer.Exit as done:
        return int(done.exit_code)
    except ClickException as error:
        typer.echo(f"reset-access: {error.format_message()} (see reset-access --help)", err=True)
        return REFUSED
    except (typer.Abort, KeyboardInterrupt):
        result = Interrupted.code
    except CliError as error:
        typer.echo(f"reset-access: {error}", err=True)
        return error.code
    if result == Interrupted.code:
        # typer answers a Ctrl-C outside our own handling with 130 and no word.
        typer.echo("reset-access: interrupted", err=True)
    return result if isinstance(result, int) else OK
