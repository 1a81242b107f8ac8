"""The ResetAccess CDK app: one stack, built from a construct per concern."""
