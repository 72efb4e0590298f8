"""Trainers for the stage-2 model."""
