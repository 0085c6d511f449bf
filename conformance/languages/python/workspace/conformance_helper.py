# A sibling module that other workspace files import.
import os

VALUE = 42


def workspace_folder():
    """The folder this file was loaded from."""
    return os.path.dirname(os.path.abspath(__file__))
