"""Content ingestion (masters -> encrypted AAC HLS ladder) and the stream tokens."""
