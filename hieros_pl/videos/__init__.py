"""Frames for videos (an episode of the policy, open-loop world-model predictions) and
writing them as mp4 files."""
