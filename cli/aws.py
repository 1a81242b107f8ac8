"""The command's way to AWS: one boto3 Session, the deployed stack's outputs, and AWS's errors
turned into one line that names the cause and what to do."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from cli.errors import CliError, Refused

if TYPE_CHECKING:
    import boto3
    from mypy_boto3_cloudformation import CloudFormationClient
    from mypy_boto3_cloudwatch import CloudWatchClient
    from mypy_boto3_dynamodb import DynamoDBClient
    from mypy_boto3_ec2 import EC2Client
    from mypy_boto3_ssm import SSMClient
    from mypy_boto3_stepfunctions import SFNClient

ACCESS_DENIED = {
    "AccessDenied",
    "AccessDeniedException",
    "UnauthorizedOperation",
    "UnauthorizedAccess",
    "AuthorizationError",
}
BAD_CREDENTIALS = {
    "ExpiredToken",
    "ExpiredTokenException",
    "InvalidClientTokenId",
    "UnrecognizedClientException",
    "SignatureDoesNotMatch",
    "AuthFailure",
    "InvalidSignatureException",
}


@dataclass
class Aws:
    """What every subcommand needs: where to call, as whom, and which stack."""

    region: str | None = None
    profile: str | None = None
    endpoint_url: str | None = None
    stack: str = "ResetAccess"
    _session: boto3.Session | None = field(default=None, repr=False)
    _outputs: dict[str, str] | None = field(default=None, repr=False)

    def session(self) -> boto3.Session:
        if self._session is None:
            # boto3 takes a few hundred milliseconds to import: only commands that call AWS pay.
            import boto3
            import botocore.exceptions

            try:
                self._session = boto3.Session(profile_name=self.profile, region_name=self.region)
            except botocore.exceptions.ProfileNotFound:
                raise Refused(
                    f"profile {self.profile!r} is not in your AWS config; list them with "
                    "`aws configure list-profiles`, or leave out --profile"
                ) from None
            if not self._session.region_name:
                raise Refused(
                    "no AWS Region: pass --region (e.g. --region eu-west-1), set AWS_REGION, "
                    "or set a region in your profile"
                )
        return self._session

    @property
    def region_name(self) -> str:
        return str(self.session().region_name)

    def client(self, service: str) -> Any:
        from botocore.config import Config

        # Few retries and short timeouts: a person is waiting, and an unreachable endpoint
        # should say so in seconds, not after botocore's minutes of backoff.
        config = Config(connect_timeout=5, read_timeout=30, retries={"max_attempts": 3})
        return self.session().client(service, endpoint_url=self.endpoint_url, config=config)

    def stepfunctions(self) -> SFNClient:
        return self.client("stepfunctions")  # type: ignore[no-any-return]

    def ssm(self) -> SSMClient:
        return self.client("ssm")  # type: ignore[no-any-return]

    def ec2(self) -> EC2Client:
        return self.client("ec2")  # type: ignore[no-any-return]

    def cloudwatch(self) -> CloudWatchClient:
        return self.client("cloudwatch")  # type: ignore[no-any-return]

    def dynamodb(self) -> DynamoDBClient:
        return self.client("dynamodb")  # type: ignore[no-any-return]

    def output(self, key: str) -> str:
        """One of the deployed stack's outputs (StateMachineArn, LockTableName, AlarmPrefix)."""
        if self._outputs is None:
            self._outputs = self._read_outputs()
        if key not in self._outputs:
            raise Refused(
                f"stack {self.stack} has no {key} output; update it with `make deploy` "
                "(or pass --stack with the name of a ResetAccess stack)"
            )
        return self._outputs[key]

    def _read_outputs(self) -> dict[str, str]:
        cloudformation: CloudFormationClient = self.client("cloudformation")
        try:
            stacks = cloudformation.describe_stacks(StackName=self.stack)["Stacks"]
        except Exception as error:
            if _code(error) == "ValidationError" and "does not exist" in str(error):
                raise Refused(
                    f"stack {self.stack} is not deployed in {self.region_name} for this "
                    "account; deploy it with `make deploy`, or pass --stack/--region where it is"
                ) from None
            raise
        return {
            str(output["OutputKey"]): str(output["OutputValue"])
            for output in stacks[0].get("Outputs", [])
        }


def _code(error: BaseException) -> str:
    response = getattr(error, "response", None)
    if isinstance(response, dict):
        return str(response.get("Error", {}).get("Code", ""))
    return ""


def explain(error: BaseException, endpoint_url: str | None) -> CliError | None:
    """The one line for an AWS error a user can cause, or None for one that is a bug."""
    import botocore.exceptions as aws

    if isinstance(error, aws.NoRegionError):
        return Refused("no AWS Region: pass --region, set AWS_REGION, or set one in your profile")
    if isinstance(error, aws.NoCredentialsError | aws.PartialCredentialsError):
        return Refused(
            "no AWS credentials found: run `aws configure` (or `aws sso login`), or pass --profile"
        )
    if isinstance(error, aws.TokenRetrievalError | aws.SSOError):
        return Refused(f"your AWS sign-in has expired ({error}); run `aws sso login` again")
    if isinstance(
        error,
        aws.EndpointConnectionError | aws.ConnectTimeoutError | aws.ReadTimeoutError,
    ):
        where = getattr(error, "kwargs", {}).get("endpoint_url") or endpoint_url or "AWS"
        return Refused(
            f"cannot reach {where}: check your network"
            + (" and --endpoint-url / AWS_ENDPOINT_URL" if endpoint_url else " and --region")
        )
    if isinstance(error, aws.ClientError):
        return _client_error(error)
    if isinstance(error, aws.ParamValidationError):
        return Refused(f"AWS would refuse this request: {_one_line(str(error))}")
    if isinstance(error, aws.BotoCoreError):
        return Refused(f"AWS call failed: {_one_line(str(error))}")
    return None


def _client_error(error: Any) -> CliError:
    code = _code(error)
    operation = getattr(error, "operation_name", "the call")
    message = _one_line(str(error.response.get("Error", {}).get("Message", "")))
    if code in ACCESS_DENIED:
        return Refused(
            f"access denied to {operation} ({code}): your identity needs that permission "
            "(docs/cli-policy.json lists what the command uses)"
        )
    if code in BAD_CREDENTIALS:
        return Refused(
            f"AWS refused your credentials ({code}); refresh them (`aws sso login` or "
            "`aws configure`) or pass another --profile"
        )
    return Refused(f"{operation} failed: {code}: {message}")


def _one_line(text: str) -> str:
    return " ".join(text.split())


@contextmanager
def aws_errors(endpoint_url: str | None) -> Iterator[None]:
    """Turn what AWS or the network answered into the command's one-line errors."""
    try:
        yield
    except CliError:
        raise
    except Exception as error:
        explained = explain(error, endpoint_url) if _is_aws(error) else None
        if explained is None:
            raise
        raise explained from None


def _is_aws(error: BaseException) -> bool:
    return type(error).__module__.startswith("botocore")
