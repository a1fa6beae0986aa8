"""The phone companion: the practice log kept on the listener's machine, and what the
served page may write."""
