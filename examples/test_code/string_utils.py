"""Sample workspace of the original executor description: string helpers."""


def greet(name):
    """A greeting for name."""
    return f"Hello, {name}!"


print("string_utils loaded")
