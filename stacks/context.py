"""CDK context values (cdk.json, or `-c name=value`): a wrong one stops synth with one line that
names it and what to give (app.py prints it), not a traceback."""

from __future__ import annotations


class ContextError(ValueError):
    """A context value is wrong; the message names it and says what to give instead."""
