"""Sample workspace of the original executor description: mathematical helpers."""

import math


def calculate_circle_area(radius):
    """Area of a circle of the given radius."""
    return math.pi * radius**2


def factorial(n):
    """n!, recursively."""
    if n < 0:
        raise ValueError("factorial of a negative number")
    return 1 if n <= 1 else n * factorial(n - 1)


def add_numbers(a, b):
    """a + b."""
    return a + b


print("math_utils loaded")
