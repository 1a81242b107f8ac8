"""The embedded AWS: the real workflow on moto, with our handlers and the real rescue agent."""
