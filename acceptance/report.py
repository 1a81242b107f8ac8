"""What an acceptance run reports: each step's outcome, the clean-up's, and what is left.

Kept apart from the run so the command line (acceptance/__main__.py) and the local engine
(local/acceptance.py) can print and judge a report, and explain an error in one line, without the
steps that produce them.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from botocore.exceptions import (
    BotoCoreError,
    ClientError,
    EndpointConnectionError,
    NoCredentialsError,
    NoRegionError,
    ProfileNotFound,
)


class Failure(Exception):
    """A step failed for a reason the user can act on: one line, no traceback."""


class Skipped(Exception):
    """A step that does not apply to this account (said why in the report)."""


@dataclass
class StepResult:
    name: str
    outcome: str  # ok, failed, skipped, interrupted
    seconds: float
    detail: str = ""


@dataclass
class Report:
    steps: list[StepResult] = field(default_factory=list)
    cleanup: list[StepResult] = field(default_factory=list)
    seconds: float = 0.0
    left: list[str] = field(default_factory=list)

    @property
    def passed(self) -> bool:
        return (
            all(s.outcome in ("ok", "skipped") for s in self.steps + self.cleanup)
            and bool(self.steps)
            and not self.left
        )

    def lines(self) -> list[str]:
        out = ["", "acceptance run:"]
        for step in self.steps:
            out.append(f"  {step.name:<17} {step.outcome:<11} {step.seconds:6.1f} s  {step.detail}")
        out.append("clean-up:")
        for step in self.cleanup:
            out.append(f"  {step.name:<17} {step.outcome:<11} {step.seconds:6.1f} s  {step.detail}")
        out.append(f"left behind: {', '.join(self.left) if self.left else 'nothing'}")
        out.append(
            f"took {self.seconds / 60:.1f} min ({self.seconds:.0f} s); "
            f"{'PASSED' if self.passed else 'FAILED'}"
        )
        return out


def explain(error: BaseException, step: str) -> str:
    """One line naming the cause and what to do."""
    if isinstance(error, Failure):
        return str(error)
    if isinstance(error, NoCredentialsError):
        return "no AWS credentials found: run `aws configure`, set AWS_PROFILE, or pass --profile"
    if isinstance(error, NoRegionError):
        return "no AWS Region: pass --region or set AWS_REGION"
    if isinstance(error, ProfileNotFound):
        return f"{error}: pass an existing --profile (see ~/.aws/config)"
    if isinstance(error, EndpointConnectionError):
        return f"cannot reach AWS ({error}); check the network and the Region"
    if isinstance(error, ClientError):
        code = error.response.get("Error", {}).get("Code", "")
        message = error.response.get("Error", {}).get("Message", "")
        operation = getattr(error, "operation_name", "")
        if code in ("AccessDenied", "AccessDeniedException", "UnauthorizedOperation"):
            return (
                f"{operation} was denied ({code}): your credentials need it for the "
                f"{step} step; docs/acceptance-policy.json lists every right the run uses"
            )
        if code in (
            "ExpiredToken",
            "ExpiredTokenException",
            "InvalidClientTokenId",
            "UnrecognizedClientException",
            "AuthFailure",
        ):
            return f"your AWS credentials are not valid ({code}): refresh them and run again"
        return f"{operation} failed: {code}: {message}"
    if isinstance(error, BotoCoreError):
        return f"AWS SDK error: {error}"
    return f"{type(error).__name__}: {error}"
