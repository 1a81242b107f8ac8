"""The phase functions of the ResetAccess workflow: thin handlers over plain logic."""
