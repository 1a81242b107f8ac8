"""The real-account acceptance run (`make acceptance`), also run on the local engine."""
