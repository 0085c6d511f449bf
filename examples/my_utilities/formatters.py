def format_currency(amount):
    return f"${amount:,.2f}"


def format_percentage(value):
    return f"{value:.1f}%"


print("Formatters loaded")
