"""Streaming runtime: Agent, temporal context, clocks."""
