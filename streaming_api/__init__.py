"""streaming_api"""
