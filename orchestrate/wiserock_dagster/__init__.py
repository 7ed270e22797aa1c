"""The WiseRock ELT project's Dagster code location: Meltano jobs, schedules and staging tables."""
