"""The workflow: its phase functions (phases), retry and catch rules (policies) and the Amazon
States Language definition built from them (definition). Standard library only, so the stack,
the local engine and the tests all read the same definition without synthesizing CDK."""
