"""The script: what a session says.

Templates and their context, the markup, re-sizing, checks and statistics.
"""
