"""Plain functions behind the phases: they take boto3 clients and data, and return data."""
