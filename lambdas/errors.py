"""Errors the workflow routes on. Step Functions names a Lambda error by its class name, so the
ASL's ErrorEquals use exactly these names."""


class ResetAccessError(Exception):
    """Base of every error a phase raises on purpose."""


class InvalidInput(ResetAccessError):
    """The execution input is refused; nothing was changed."""


class Unsupported(ResetAccessError):
    """The instance cannot be reset this way (instance-store root, Windows before its path...)."""


class InstanceLocked(ResetAccessError):
    """Another execution holds the lock on this instance."""


class NotReady(ResetAccessError):
    """A poll found the world not yet in the wanted state; the ASL retries with backoff."""


class RescueFailed(ResetAccessError):
    """The rescue agent ran and reported a failure."""


class UnexpectedState(ResetAccessError):
    """The world is in a state this phase will not act on; acting could make things worse."""


class RollbackIncomplete(ResetAccessError):
    """Rollback could not put the instance back; the message says where things stand."""


class AwsTransient(ResetAccessError):
    """An AWS call failed in a way worth retrying (throttling, 5xx, connection)."""


class AwsError(ResetAccessError):
    """An AWS call was refused (permissions, limits, invalid state); retrying will not help."""


class BranchStopped(ResetAccessError):
    """A phase of a stopped Parallel branch started after the failure path closed the run's
    in-flight marks: it changes nothing (Step Functions discards its result)."""


class InjectedFault(ResetAccessError):
    """Raised by the local engine's fault injection (never in AWS)."""
