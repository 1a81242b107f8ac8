"""One module per phase: `handler` is the Lambda entry point, a few lines over lambdas.logic."""
