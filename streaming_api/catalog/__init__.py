"""The media catalog: artists, albums and songs in PostgreSQL, loaded and read."""
