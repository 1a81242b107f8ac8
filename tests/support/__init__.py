"""What more than one test module uses: workflow runs and their checks, the synthesized stack,
the agent's disks and volume trees, the call scanner. conftest.py files only declare fixtures."""
