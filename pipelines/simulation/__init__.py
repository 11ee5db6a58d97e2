"""Traffic simulation: realistic listening as a stream of v1 play events (``traffic``)."""
