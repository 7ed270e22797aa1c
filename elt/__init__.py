"""The WiseRock ELT project's own glue: running the Meltano job, its databases and its sample data."""
