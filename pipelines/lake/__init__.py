"""The batch half of the lake: dimensions, silver and gold jobs, maintenance, privacy."""
