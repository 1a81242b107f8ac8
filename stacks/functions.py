"""The phase functions: one code asset, one layer, and one function and role per phase
(statemachine/phases.py)."""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Iterable, Mapping
from dataclasses import dataclass

from aws_cdk import Aws, Duration, RemovalPolicy
from aws_cdk import aws_iam as iam
from aws_cdk import aws_lambda as lambda_
from aws_cdk import aws_logs as logs
from constructs import Construct

from lambdas.config import COOLDOWN_VARIABLE, TIMEOUT_VARIABLE
from stacks.fleet_scope import FleetScope
from stacks.nag import acknowledge, wildcard_finding
from stacks.permissions import (
    ALL_RESOURCES_REASON,
    Rule,
    render,
    render_conditions,
    rules_for,
)
from stacks.project import LAMBDAS_DIR, LAYER_DIR, ROOT, SERVICE_NAME
from stacks.storage import Storage
from statemachine.phases import Phase

RUNTIME = lambda_.Runtime.PYTHON_3_13
RUNTIME_REASON = (
    "python3.13 on purpose: the layer is built from cp313 aarch64 wheels (make layer, "
    "--python-version 3.13) and the handlers are tested for it; a newer runtime is a deliberate "
    "change of RUNTIME and the layer's --python-version together."
)
ARCHITECTURE = lambda_.Architecture.ARM_64
LOG_RETENTION = logs.RetentionDays.THREE_MONTHS
# The asset is the repository root filtered down to the `lambdas` package, so that handlers
# import as `lambdas.handlers.<name>`. Tests, caches and the layer's requirements stay out.
ASSET_EXCLUDE = [
    "*",
    ".*",
    "!lambdas",
    "!lambdas/**",
    "lambdas/tests",
    "lambdas/**/__pycache__",
    "lambdas/**/*.pyc",
    "lambdas/requirements.txt",
]
LAYER_EXCLUDE = ["**/__pycache__", "**/*.pyc", "bin"]


@dataclass(frozen=True)
class Environment:
    """What every function reads at cold start (docs/interfaces.md, lambdas/config.py)."""

    lock_table_name: str
    kms_key_arn: str
    rescue_document_name: str
    helper_instance_profile_arn: str
    helper_role_arn: str
    notify_topic_arn: str
    alarm_cooldown_seconds: int

    def variables(self, state_machine_arn: str = "") -> dict[str, str]:
        return {
            "NOTIFY_TOPIC_ARN": self.notify_topic_arn,
            COOLDOWN_VARIABLE: str(self.alarm_cooldown_seconds),
            "LOCK_TABLE_NAME": self.lock_table_name,
            "KMS_KEY_ARN": self.kms_key_arn,
            "RESCUE_DOCUMENT_NAME": self.rescue_document_name,
            "HELPER_INSTANCE_PROFILE_ARN": self.helper_instance_profile_arn,
            "HELPER_ROLE_ARN": self.helper_role_arn,
            "STATE_MACHINE_ARN": state_machine_arn,
            "POWERTOOLS_SERVICE_NAME": SERVICE_NAME,
            "POWERTOOLS_LOG_LEVEL": "INFO",
            # Never copy a handler's response into X-Ray: responses stay out of telemetry.
            "POWERTOOLS_TRACER_CAPTURE_RESPONSE": "false",
        }


class PhaseFunctions(Construct):
    """Creates the functions, each with a role holding exactly its rules in the table."""

    def __init__(
        self,
        scope: Construct,
        construct_id: str,
        *,
        environment: Environment,
        storage: Storage,
        resource_values: Mapping[str, str],
        fleet_scope: FleetScope | None = None,
    ) -> None:
        super().__init__(scope, construct_id)
        if not (LAYER_DIR / "python").is_dir():
            raise FileNotFoundError(
                f"the Lambda layer is not built ({LAYER_DIR.relative_to(ROOT)}/python is "
                "missing): run `make layer`"
            )
        if not (LAMBDAS_DIR / "__init__.py").is_file():
            raise FileNotFoundError(f"the lambdas package is missing: {LAMBDAS_DIR}/__init__.py")
        self._environment = environment
        self._storage = storage
        self._values = dict(resource_values)
        self._fleet_scope = fleet_scope or FleetScope()
        self.code = lambda_.Code.from_asset(str(ROOT), exclude=ASSET_EXCLUDE)
        self.layer = lambda_.LayerVersion(
            self,
            "Dependencies",
            description="ResetAccess functions' dependencies (lambdas/requirements.txt)",
            code=lambda_.Code.from_asset(str(LAYER_DIR), exclude=LAYER_EXCLUDE),
            compatible_runtimes=[RUNTIME],
            compatible_architectures=[ARCHITECTURE],
        )
        self.functions: dict[str, lambda_.Function] = {}

    def add(
        self,
        phase: Phase,
        *,
        state_machine_arn: str = "",
        extra_values: Mapping[str, str] | None = None,
        extra_environment: Mapping[str, str] | None = None,
    ) -> lambda_.Function:
        """One function for the phase's `handler` entry point, with its own role."""
        rules = self._fleet_scope.narrow(rules_for(phase.handler))
        log_group = logs.LogGroup(
            self,
            f"{phase.name}Logs",
            retention=LOG_RETENTION,
            removal_policy=RemovalPolicy.DESTROY,
        )
        role = iam.Role(
            self,
            f"{phase.name}Role",
            description=f"ResetAccess {phase.handler} function",
            assumed_by=iam.ServicePrincipal("lambda.amazonaws.com"),
        )
        log_group.grant_write(role)
        values = {**self._values, **(extra_values or {})}
        timeout = Duration.seconds(phase.timeout_seconds)
        self._attach(role, rules, values)
        function = lambda_.Function(
            self,
            phase.name,
            description=f"ResetAccess phase: {phase.handler.replace('_', ' ')}",
            runtime=RUNTIME,
            architecture=ARCHITECTURE,
            code=self.code,
            handler=f"{phase.module}.handler",
            layers=[self.layer],
            role=role,
            timeout=timeout,
            memory_size=phase.memory_mb,
            tracing=lambda_.Tracing.ACTIVE,
            log_group=log_group,
            # The AWS clients' timeouts are cut to fit it (lambdas/runtime.py client_config).
            environment={
                **self._environment.variables(state_machine_arn),
                TIMEOUT_VARIABLE: str(timeout.to_seconds()),
                **(extra_environment or {}),
            },
        )
        acknowledge(function, {"AwsSolutions-L1": [RUNTIME_REASON]})
        self.functions[phase.handler] = function
        return function

    def _attach(self, role: iam.Role, rules: Iterable[Rule], values: Mapping[str, str]) -> None:
        reasons: dict[str, list[str]] = defaultdict(list)
        # The key's uses, by their conditions (through SSM, through SNS to the topic).
        key_uses: dict[str, tuple[Rule, list[str]]] = {}
        for rule in rules:
            resources = [render(r, values) for r in rule.resources]
            role.add_to_policy(
                iam.PolicyStatement(
                    actions=list(rule.actions),
                    resources=resources,
                    conditions=render_conditions(rule.conditions, values) or None,
                )
            )
            for template, resource in zip(rule.resources, resources, strict=True):
                if template == "*":
                    reasons[wildcard_finding(role, "*")].append(
                        ALL_RESOURCES_REASON.format(actions=", ".join(rule.actions))
                    )
                elif "*" in template:
                    reasons[wildcard_finding(role, resource)].append(rule.why)
            if rule.resources == ("{key_arn}",):
                _, actions = key_uses.setdefault(repr(rule.conditions), (rule, []))
                actions += [a for a in rule.actions if a not in actions]
        # tracing=ACTIVE adds X-Ray's writes, which take no resource, to the role's policy.
        reasons[wildcard_finding(role, "*")].append(
            ALL_RESOURCES_REASON.format(actions="xray:PutTraceSegments, xray:PutTelemetryRecords")
        )
        acknowledge(role, reasons)
        for rule, actions in key_uses.values():
            # The key policy names this role too: a grant in IAM alone does not open the key.
            self._storage.allow_use(role, actions, render_conditions(rule.conditions, values))


def resource_values(**named: str) -> dict[str, str]:
    """The values permission templates are filled with: the stack's pseudo parameters + named."""
    return {
        "partition": Aws.PARTITION,
        "region": Aws.REGION,
        "account": Aws.ACCOUNT_ID,
        **named,
    }
