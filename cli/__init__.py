"""`reset-access`: start a reset, follow it, fetch the key, arm an alarm."""
